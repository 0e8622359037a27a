package signaler

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrNoTarget means no process matched; the reload stays pending. Errors that
// wrap it say which names or PID file were tried and how to make the app
// visible (shareProcessNamespace).
var ErrNoTarget = errors.New("no matching process")

// ErrNotCatching means a target has no handler for the reload signal and the
// signal's default action would terminate or stop it, so it was not sent; the
// reload stays pending until the app installs a handler or RELOAD_FORCE is set.
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

// Error returns one line naming both UIDs and the two ways to fix it.
func (e *PermissionError) Error() string {
	target := "an unknown uid"
	fix := "set the sidecar's securityContext runAsUser to the app's UID"
	if e.TargetUID >= 0 {
		target = fmt.Sprintf("uid %d", e.TargetUID)
		fix = fmt.Sprintf("set the sidecar's securityContext runAsUser to %d (the app's UID)", e.TargetUID)
	}
	return fmt.Sprintf("send %s to pid %d (%s): %v: pollreload runs as uid %d but the process runs as %s; %s, or add the CAP_KILL capability",
		signalName(e.Signal), e.PID, e.Name, e.Err, e.UID, target, fix)
}

// Unwrap returns the underlying errno so errors.Is(err, os.ErrPermission) holds.
func (e *PermissionError) Unwrap() error { return e.Err }

// Reason maps a Reload error to its metric label: ResultOf(err).String().
func Reason(err error) string { return ResultOf(err).String() }
