package signaler

import (
	"context"
	"time"
)

// Reloader makes the application pick up new configuration.
type Reloader interface {
	// Reload triggers one reload for a change first seen at changedAt. A nil
	// error means every target that needed it has been told (or none needed
	// it: see Outcome.UpToDate). A non-nil error leaves the reload pending.
	Reload(ctx context.Context, changedAt time.Time) (Outcome, error)
}

// Outcome says what one Reload did.
type Outcome struct {
	// Signalled lists the targets that were sent the reload.
	Signalled []Target
	// UpToDate lists targets that started after the change: they read the
	// new configuration at start and were not signalled.
	UpToDate []Target
}

// Target is one process (or endpoint) a reload went to.
type Target struct {
	PID  int    // 0 for an HTTP target
	Name string // process name or URL with credentials removed
	// startTicks is the process's start time as /proc shows it, so that a
	// Verifier recognises the very process that was signalled.
	startTicks uint64
}

// Every reloader in this package satisfies Reloader; the compiler checks it
// here so a signature drift breaks the build, not the poll loop.
var (
	_ Reloader = (*Process)(nil)
	_ Reloader = (*HTTP)(nil)
	_ Reloader = (*Child)(nil)
)
