package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/signaler"
)

// advise adds to err what only this layer knows: the variable a value came
// from, as the user spells it, and the pod-spec change that fixes it. The
// libraries (hasher, signaler) return structured errors saying what they
// found; the words to fix a deployment live here. The result still wraps
// err, so errors.Is and errors.As see the same chain. Every error that
// reaches a user goes through it: the poll loop's and the hasher's logs
// (poller.Options.Advise, hasher.Options.Advise), check and hash.
func advise(cfg Config, err error) error {
	var done *advised
	if err == nil || errors.As(err, &done) {
		return err
	}
	if text, ok := adviseJoined(cfg, err); ok {
		return &advised{err: err, text: text}
	}
	if text := advice(cfg, err); text != "" {
		return &advised{err: err, text: text}
	}
	return err
}

// adviseJoined advises each error of an errors.Join (one failure per
// process), so that each gets its own advice.
func adviseJoined(cfg Config, err error) (string, bool) {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return "", false
	}
	var before, after []string
	for _, e := range j.Unwrap() {
		if e == nil {
			continue
		}
		before = append(before, e.Error())
		after = append(after, advise(cfg, e).Error())
	}
	if err.Error() != strings.Join(before, "\n") { // not a Join: fmt.Errorf with several %w
		return "", false
	}
	return strings.Join(after, "\n"), true
}

// advice returns err's text with the advice for the structured error it
// holds put in that error's place, or "" when there is nothing to add.
func advice(cfg Config, err error) string {
	var (
		tooMany  *hasher.TooManyFilesError
		tooLarge *hasher.FileTooLargeError
		tooDeep  *hasher.TooDeepError
		total    *hasher.TotalTooLargeError
		noTarget *signaler.NoTargetError
		pidFile  *signaler.PIDFileError
		notCatch *signaler.NotCatchingError
		perm     *signaler.PermissionError
	)
	switch {
	case errors.As(err, &tooMany):
		return in(err, tooMany, fmt.Sprintf("%v (%s=%d; raise it or narrow INCLUDE/EXCLUDE)", tooMany, cfg.name("MAX_FILES"), tooMany.Max))
	case errors.As(err, &tooLarge):
		return in(err, tooLarge, fmt.Sprintf("%v (%s=%d; raise it or leave the file out with EXCLUDE)", tooLarge, cfg.name("MAX_FILE_SIZE"), tooLarge.Max))
	case errors.As(err, &tooDeep):
		return in(err, tooDeep, fmt.Sprintf("%v (%s=%d; raise it or leave the directory out with EXCLUDE)", tooDeep, cfg.name("MAX_DEPTH"), tooDeep.Max))
	case errors.As(err, &total):
		return in(err, total, fmt.Sprintf("%v (%s=%d; raise it or narrow INCLUDE/EXCLUDE)", total, cfg.name("MAX_TOTAL_SIZE"), total.Max))
	case errors.As(err, &noTarget):
		return in(err, noTarget, noTargetAdvice(cfg, noTarget))
	case errors.As(err, &pidFile):
		return in(err, pidFile, fmt.Sprintf("%s %s: %v", cfg.name("PID_FILE"), pidFile.Path, pidFile.Err))
	case errors.As(err, &notCatch):
		until := ""
		if !notCatch.Ignored {
			until = " until it installs one"
		}
		return in(err, notCatch, fmt.Sprintf("%v; the reload stays pending%s (%s=true sends anyway)", notCatch, until, cfg.name("RELOAD_FORCE")))
	case errors.As(err, &perm):
		fix := "set the sidecar's securityContext runAsUser to the app's UID"
		if perm.TargetUID >= 0 {
			fix = fmt.Sprintf("set the sidecar's securityContext runAsUser to %d (the app's UID)", perm.TargetUID)
		}
		return in(err, perm, fmt.Sprintf("%v; %s, or add the CAP_KILL capability", perm, fix))
	}
	return ""
}

// noTargetAdvice names the variable PROCESS_NAME as given and the pod-spec
// fix for each way a lookup by name finds nothing.
func noTargetAdvice(cfg Config, e *signaler.NoTargetError) string {
	names := strings.Join(e.Names, ",")
	name := cfg.name("PROCESS_NAME") + "=" + names
	switch {
	case e.PID1:
		return fmt.Sprintf("%v: %s matches only PID 1, which pollreload never signals; run the app under pollreload's wrapper mode (pollreload -- CMD) or in its own container with shareProcessNamespace: true in the pod spec",
			signaler.ErrNoTarget, name)
	case len(e.Zombies) > 0:
		return strings.Replace(e.Error(), names, name, 1)
	}
	return fmt.Sprintf("%v: no process in %s is named %s (by comm, argv[0] or executable); if the app runs in another container of the pod, set shareProcessNamespace: true in the pod spec",
		signaler.ErrNoTarget, e.ProcDir, name)
}

// in returns err's text with sub's text, where it appears, replaced by
// text: the prefixes that wrap sub stay as they are. It returns "" when
// err's text does not show sub's.
func in(err, sub error, text string) string {
	full, own := err.Error(), sub.Error()
	if !strings.Contains(full, own) {
		return ""
	}
	return strings.Replace(full, own, text, 1)
}

// advised is an error with this layer's text in place of its own.
type advised struct {
	err  error
	text string
}

func (a *advised) Error() string { return a.text }
func (a *advised) Unwrap() error { return a.err }
