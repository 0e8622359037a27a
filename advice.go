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
// err, so errors.Is and errors.As see the same chain.
func advise(cfg Config, err error) error {
	var tooMany *hasher.TooManyFilesError
	var noTarget *signaler.NoTargetError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooMany):
		return &advised{err: err, text: fmt.Sprintf("%v (%s=%d; raise it or narrow INCLUDE/EXCLUDE)", err, cfg.name("MAX_FILES"), tooMany.Max)}
	case errors.As(err, &noTarget):
		name := cfg.name("PROCESS_NAME") + "=" + strings.Join(noTarget.Names, ",")
		switch {
		case noTarget.PID1:
			return &advised{err: err, text: fmt.Sprintf("%v: %s matches only PID 1, which pollreload never signals; run the app under pollreload's wrapper mode (pollreload -- CMD) or in its own container with shareProcessNamespace: true in the pod spec",
				signaler.ErrNoTarget, name)}
		case len(noTarget.Zombies) > 0:
			return &advised{err: err, text: strings.Replace(err.Error(), strings.Join(noTarget.Names, ","), name, 1)}
		}
		return &advised{err: err, text: fmt.Sprintf("%v: no process in %s is named %s (by comm, argv[0] or executable); if the app runs in another container of the pod, set shareProcessNamespace: true in the pod spec",
			signaler.ErrNoTarget, noTarget.ProcDir, name)}
	}
	return err
}

// advised is an error with this layer's text in place of its own.
type advised struct {
	err  error
	text string
}

func (a *advised) Error() string { return a.text }
func (a *advised) Unwrap() error { return a.err }
