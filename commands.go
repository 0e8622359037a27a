package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/signaler"
)

// runHash prints, for each path, its digest (seed 0, stable across runs and
// machines) and its files: the same digest the daemon compares, with the
// same INCLUDE, EXCLUDE and limits from the environment.
func runHash(ctx context.Context, paths, environ []string, stdout, stderr io.Writer) error {
	if len(paths) == 0 {
		return usageErr("hash needs at least one path, as in pollreload hash /etc/app")
	}
	cfg, err := loadConfig(environ, nil)
	if err == nil {
		err = cfg.validateScan()
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	comp, err := newComponents(cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	h := comp.hasher
	failed := false
	for _, p := range paths {
		s, err := h.Scan(ctx, p)
		if err != nil {
			return advise(cfg, err) // it names p
		}
		fmt.Fprintf(stdout, "%016x  %s  (%s, %s, %s)\n", s.Digest, displayName(p), s.Kind, count(len(s.Files), "file"), count(int(s.Bytes), "byte"))
		for _, name := range sortedNames(s.Files) {
			f := s.Files[name]
			fmt.Fprintf(stdout, "  %016x  %10d  %s\n", f.Digest, f.Size, displayName(name))
		}
		for _, sk := range s.Skipped {
			fmt.Fprintf(stdout, "  skipped (%s)  %s\n", sk.Reason, displayName(sk.Path))
		}
		for _, e := range s.Errors {
			failed = true
			fmt.Fprintf(stdout, "  error (%s)  %s: %v\n", e.Kind, displayName(e.Path), advise(cfg, e.Err))
		}
	}
	if failed {
		return errors.New("some files could not be read; their digests are missing above")
	}
	return nil
}

// runCheck scans once and reports what a reload would do, ending with the
// fix for every problem found. It returns an error when the setup cannot
// work.
func runCheck(ctx context.Context, cfg Config, comp components, stdout io.Writer) error {
	var problems []string
	h := comp.hasher
	fmt.Fprintln(stdout, "Watched paths:")
	for _, p := range cfg.ConfigDir {
		s, err := h.Scan(ctx, p)
		if err != nil {
			// The line names p already: the error's own "scan p: " is not
			// repeated.
			cause := strings.TrimPrefix(advise(cfg, err).Error(), "scan "+p+": ")
			fmt.Fprintf(stdout, "  %s: cannot scan: %s\n", p, cause)
			if hasher.ErrorKind(err) == "limit" { // the advice says how to raise it
				problems = append(problems, fmt.Sprintf("%s cannot be scanned: %s", p, cause))
			} else {
				problems = append(problems, fmt.Sprintf("%s cannot be scanned (%s): fix the path or its permissions", p, cause))
			}
			continue
		}
		fmt.Fprintf(stdout, "  %s: %s, %s, %s\n", p, s.Kind, count(len(s.Files), "file"), count(int(s.Bytes), "byte"))
		for _, sk := range s.Skipped {
			fmt.Fprintf(stdout, "    skipped (%s): %s\n", sk.Reason, displayName(sk.Path))
		}
		for _, e := range s.Errors {
			fmt.Fprintf(stdout, "    unreadable (%s): %s: %v\n", e.Kind, displayName(e.Path), advise(cfg, e.Err))
			problems = append(problems, fmt.Sprintf("%s/%s is unreadable by uid %d: changes to it are not seen", p, e.Path, os.Getuid()))
		}
	}

	problems = append(problems, checkTargets(ctx, cfg, comp, stdout)...)
	if len(problems) > 0 {
		fmt.Fprintln(stdout, "Problems:")
		for _, p := range problems {
			fmt.Fprintln(stdout, "  -", p)
		}
		return &exitError{code: 1, err: fmt.Errorf("check found %s", count(len(problems), "problem"))}
	}
	fmt.Fprintln(stdout, "OK: a change would be delivered.")
	return nil
}

func checkProcesses(cfg Config, comp components, stdout io.Writer) []string {
	p := comp.process
	if p == nil {
		return []string{"no process to check: set PROCESS_NAME or PID_FILE"}
	}
	sig := cfg.ReloadSignal.Signal()
	cands, err := p.Inspect()
	if err != nil {
		err = advise(cfg, err)
		fmt.Fprintf(stdout, "  none: %v\n", err)
		return []string{err.Error()}
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	// ARGV0 and EXE come after the short columns: argv[0] may hold spaces
	// (nginx: master process ...), and scripts read PID..SELECTED by field.
	fmt.Fprintln(tw, "  PID\tNAME\tUID\tSELECTED\tCATCHES "+unix.SignalName(sig)+"\tARGV0\tEXE\tSIGNAL ALLOWED")
	var problems []string
	selected := 0
	for _, c := range cands {
		allowed := "yes"
		killErr := advise(cfg, c.KillErr)
		if killErr != nil {
			allowed = "no: " + killErr.Error()
		}
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.PID, displayName(c.Name), c.UID, yesNo(c.Selected), yesNo(c.Catches), column(c.Argv0), column(c.Exe), allowed)
		if !c.Selected {
			continue
		}
		selected++
		if killErr != nil {
			problems = append(problems, killErr.Error())
		}
		if !c.Catches && !cfg.ReloadForce {
			problems = append(problems, fmt.Sprintf("PID %d (%s) does not catch %s, whose default action would end it: reloads wait until it installs a handler (set RELOAD_FORCE=true only if you are sure)", c.PID, c.Name, unix.SignalName(sig)))
		}
	}
	tw.Flush()
	if selected == 0 {
		problems = append(problems, signaler.ErrNoTarget.Error()+": check PROCESS_NAME/PID_FILE, and set shareProcessNamespace: true on the pod so the sidecar can see the application")
	}
	return problems
}

func checkURL(ctx context.Context, cfg Config, raw string, stdout io.Writer) []string {
	fmt.Fprintf(stdout, "  %s %s\n", cfg.ReloadMethod, signaler.RedactURL(raw))
	ctx, cancel := context.WithTimeout(ctx, checkNetTimeout(cfg))
	defer cancel()
	// The daemon's TLS settings: a certificate every reload would fail on
	// fails here too. No request is sent, so nothing is reloaded.
	what, err := cfg.clientOptions().Handshake(ctx, raw)
	if err != nil {
		err = signaler.ScrubURL(raw, err)
		fmt.Fprintf(stdout, "  not reachable: %v\n", err)
		return []string{fmt.Sprintf("RELOAD_URL %s cannot be reached as the daemon would (%v); is the application listening, and does its certificate verify (RELOAD_CA_FILE)?", signaler.TargetLabel(raw), err)}
	}
	fmt.Fprintf(stdout, "  reachable (%s)\n", what)
	return nil
}

// checkNetTimeout bounds each network look of check: RELOAD_TIMEOUT, at
// most 10s, as a runbook's check must answer in seconds even when an
// endpoint accepts connections and never answers.
func checkNetTimeout(cfg Config) time.Duration { return min(cfg.ReloadTimeout, 10*time.Second) }

// count writes n with its noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// displayName returns a file or process name for one line of output: as it
// is, unless it holds a control character (a newline would forge a line of
// its own) or another rune strconv.IsPrint refuses (a bidi override, a line
// separator), is not valid UTF-8, or starts with a quote; then it is quoted
// as strconv.Quote does.
func displayName(s string) string {
	if !utf8.ValidString(s) || strings.HasPrefix(s, `"`) || strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// column returns s for one column of check's table: "-" when empty (an
// unreadable exe), quoted when it holds spaces, so columns stay apart.
func column(s string) string {
	switch {
	case s == "":
		return "-"
	case strings.ContainsAny(s, " \t"):
		return strconv.Quote(s)
	}
	return displayName(s)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func sortedNames(files map[string]hasher.File) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
