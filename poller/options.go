package poller

import (
	"context"
	"log/slog"
	"time"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/metrics"
	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file is what a caller gives the loop: the scanner, the targets with
// their reloaders and optional verifiers (verify.Verifier), and the options.

// Scanner takes one snapshot of a root. *hasher.Hasher is the Scanner.
type Scanner interface {
	Scan(ctx context.Context, root string) (*hasher.Snapshot, error)
}

// Target is one destination of reloads, with its own pending, retry and
// verify state.
type Target struct {
	// Name is what logs call the target (a process name, a redacted URL).
	Name string
	// Reloader delivers the reload. A signaler.PartialReloader is told
	// which processes already got the current change.
	Reloader signaler.Reloader
	// Verifier, if not nil, confirms every delivery: the loop calls its
	// Before right before each delivery and its After once a delivery
	// reached at least one process or endpoint, again with backoff while
	// After's verdict is unknown. After's error decides what follows:
	//
	//   - nil: success; the target holds the change.
	//   - an error wrapping signaler.ErrRejected: result "rejected"; the
	//     application refused the content, so it is not delivered again
	//     until the content changes. /healthz stays green.
	//   - an error wrapping signaler.ErrTargetDied: result "target_died";
	//     the change stays pending and is delivered again with backoff (a
	//     restarted process that read the new files at start is up to
	//     date).
	//   - any other error is transient (the metrics endpoint did not
	//     answer): After is called again with backoff, without delivering
	//     again.
	//
	// A nil Verifier: a delivery that succeeded counts at once.
	Verifier verify.Verifier
	// Precheck, if not nil, tests new content before any delivery of it
	// (RELOAD_CHECK_COMMAND): nil delivers; a rejection counts "rejected"
	// and nothing is sent until the content changes; any other error
	// counts its own result (signaler.ResultCheckError) and is retried
	// with backoff. Targets that share one Precheck share its run: it runs
	// once per content, by the first of them whose delivery is due.
	Precheck verify.Precheck
}

// Options configure a Loop.
type Options struct {
	Roots    []string
	Interval time.Duration // between scans; stretched when scans are slow
	// Settle is how long new content of a plain tree must stay the same
	// before it is delivered. Kubelet volumes change atomically and are
	// never settled.
	Settle        time.Duration
	ReloadOnStart bool // deliver a reload after the first scan
	// MaxMissed is how many intervals a scan may run before Healthy fails.
	MaxMissed int
	Scanner   Scanner
	// Targets are the independent targets; at least one.
	Targets []Target
	Metrics *metrics.Metrics // nil: metrics on a private registry
	Logger  *slog.Logger     // nil: discard
}
