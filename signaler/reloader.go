package signaler

import (
	"context"
	"time"
)

// Reloader makes the application pick up new configuration.
type Reloader interface {
	// Reload triggers one reload for a change first seen at changedAt. A nil
	// error means every target that needed it has been told (or none needed
	// it: see Outcome.UpToDate). A non-nil error leaves the reload pending;
	// the Outcome still lists the targets that were told, and Outcome.Failed
	// the ones that were not.
	Reload(ctx context.Context, changedAt time.Time) (Outcome, error)
}

// PartialReloader is a Reloader whose one Reload reaches several processes.
// ReloadExcept is Reload that skips the targets in done: those already
// signalled for this change. The poll loop passes the targets told by earlier
// attempts, so a target that was signalled for a change is never signalled
// again for it, while the ones that failed stay pending.
type PartialReloader interface {
	Reloader
	ReloadExcept(ctx context.Context, changedAt time.Time, done []Target) (Outcome, error)
}

// Outcome says what one Reload did, target by target.
type Outcome struct {
	// Signalled lists the targets that were sent the reload.
	Signalled []Target
	// UpToDate lists targets that started after the change: they read the
	// new configuration at start and were not signalled.
	UpToDate []Target
	// Skipped lists targets passed as done to ReloadExcept and still there.
	Skipped []Target
	// Failed lists the targets that were found but not told, each with its
	// error; the Reload error joins these errors.
	Failed []Failure
}

// Failure is one target a Reload could not tell.
type Failure struct {
	Target Target
	Err    error
}

// Result is the failure's Result.
func (f Failure) Result() Result { return ResultOf(f.Err) }

// Target is one process (or endpoint) a reload went to.
type Target struct {
	PID  int    // 0 for an HTTP target
	Name string // process name or URL with credentials removed
	// StartTicks is the process's start time in clock ticks since boot
	// (/proc/PID/stat field 22), 0 for an HTTP target. With PID it is the
	// process's identity: a reused PID has another start time.
	StartTicks uint64
}

// Same reports whether t and u are the same process (or endpoint).
func (t Target) Same(u Target) bool {
	return t.PID == u.PID && t.StartTicks == u.StartTicks && (t.PID != 0 || t.Name == u.Name)
}

// Every reloader in this package satisfies Reloader; the compiler checks it
// here so a signature drift breaks the build, not the poll loop.
var (
	_ Reloader        = (*Process)(nil)
	_ PartialReloader = (*Process)(nil)
	_ Reloader        = (*HTTP)(nil)
	_ Reloader        = (*Child)(nil)
)
