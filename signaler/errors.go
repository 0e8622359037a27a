package signaler

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// The errors of this package say what was found: which process, which
// file, which UIDs. How to fix it in a deployment (the variable to set, the
// pod-spec field to change) is the caller's to add, as only the caller
// knows how the options were configured; pollreload's main package does.

// ErrNoTarget means no process matched; the reload stays pending. Errors that
// wrap it say which names or PID file were tried: a *NoTargetError for
// names, a *PIDFileError for a PID file.
var ErrNoTarget = errors.New("no matching process")

// ErrNotCatching means a target has no handler for the reload signal and the
// signal's default action would terminate or stop it, so it was not sent; the
// reload stays pending until the app installs a handler or Force is set.
// Errors that wrap it are *NotCatchingError.
var ErrNotCatching = errors.New("target does not catch the reload signal")

// PermissionError reports that the kernel refused the signal (EPERM): the
// sender's UID does not match the target's and it lacks CAP_KILL.
type PermissionError struct {
	PID       int
	Name      string
	Signal    syscall.Signal
	UID       int // pollreload's effective UID
	TargetUID int // the target's real UID, -1 if it could not be read
	Err       error
}

// Error returns one line naming the target and both UIDs.
func (e *PermissionError) Error() string {
	target := "an unknown uid"
	if e.TargetUID >= 0 {
		target = fmt.Sprintf("uid %d", e.TargetUID)
	}
	return fmt.Sprintf("send %s to pid %d (%s): %v: pollreload runs as uid %d but the process runs as %s",
		signalName(e.Signal), e.PID, e.Name, e.Err, e.UID, target)
}

// Unwrap returns the underlying errno so errors.Is(err, os.ErrPermission) holds.
func (e *PermissionError) Unwrap() error { return e.Err }

// NotCatchingError reports a target that was not signalled because the
// signal would not reload it: it has no handler, and the default action
// would terminate or stop it or do nothing (ignore it, or only continue
// it), or it ignores the signal. It wraps ErrNotCatching.
type NotCatchingError struct {
	PID    int
	Name   string
	Signal syscall.Signal
	// Ignored is set when the process ignores the signal (SIG_IGN);
	// otherwise Action is what its default action would do: "terminate",
	// "stop", "ignore" or "continue".
	Ignored bool
	Action  string
}

func (e *NotCatchingError) Error() string {
	s := signalName(e.Signal)
	if e.Ignored {
		return fmt.Sprintf("%v: pid %d (%s) ignores %s, so it would not reload", ErrNotCatching, e.PID, e.Name, s)
	}
	switch e.Action {
	case "ignore":
		return fmt.Sprintf("%v: pid %d (%s) has no %s handler and the default action ignores it, so nothing would reload",
			ErrNotCatching, e.PID, e.Name, s)
	case "continue":
		return fmt.Sprintf("%v: pid %d (%s) has no %s handler and the default action only continues a stopped process, so nothing would reload",
			ErrNotCatching, e.PID, e.Name, s)
	}
	return fmt.Sprintf("%v: pid %d (%s) has no %s handler yet and the default action would %s it",
		ErrNotCatching, e.PID, e.Name, s, e.Action)
}

// Unwrap makes errors.Is(err, ErrNotCatching) hold.
func (e *NotCatchingError) Unwrap() error { return ErrNotCatching }

// PIDFileError reports a PID file that names no process to signal: it does
// not exist yet, cannot be read, does not hold a PID, or names a process
// that exited, is a zombie, or started after the file was written. Err says
// which, and wraps ErrNoTarget when the app may yet write the file or
// restart (the reload stays pending).
type PIDFileError struct {
	Path string
	Err  error
}

func (e *PIDFileError) Error() string { return "the PID file " + e.Path + ": " + e.Err.Error() }

func (e *PIDFileError) Unwrap() error { return e.Err }

// Reason maps a Reload error to its metric label: ResultOf(err).String().
func Reason(err error) string { return ResultOf(err).String() }

// TimeoutError is a reload request that got no response within its
// timeout (HTTPOptions.Timeout).
type TimeoutError struct {
	Timeout time.Duration
	Err     error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("no response within %s: %v", e.Timeout, e.Err)
}

// Unwrap makes errors.Is(err, context.DeadlineExceeded) hold.
func (e *TimeoutError) Unwrap() error { return e.Err }
