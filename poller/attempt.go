package poller

import (
	"context"
	"time"

	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file runs the deliveries beside the scans: every attempt that is due
// starts on its own goroutine and sends its result back to the loop.

// result is an attempt's answer, sent from its goroutine to the loop.
type result struct {
	a   attempt
	out signaler.Outcome
	err error
	at  time.Time
}

// startDue starts every attempt that is due, each on its own goroutine.
func (l *Loop) startDue(ctx context.Context, now time.Time) {
	if ctx.Err() != nil {
		return
	}
	l.due = l.tracker.AppendDue(l.due[:0], now)
	for _, i := range l.due {
		a := l.tracker.Begin(i)
		l.wg.Add(1)
		go l.attempt(ctx, a)
	}
}

// attempt runs one delivery or verification and sends back its result.
func (l *Loop) attempt(ctx context.Context, a attempt) {
	defer l.wg.Done()
	t := l.targets[a.Target]
	var out signaler.Outcome
	var err error
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case a.step == Verify:
		out = a.Delivered
		if len(a.Delivered.Signalled) > 0 { // up to date only: nothing to confirm
			err = t.Verifier.After(ctx, verify.Delivery{At: a.SentAt, Targets: a.Delivered.Signalled})
		}
	default:
		if t.Precheck != nil {
			if err = l.checks.run(ctx, t.Precheck, a.content.Digest); err != nil {
				err = &precheckError{err}
				break // nothing is delivered
			}
		}
		if t.Verifier != nil {
			t.Verifier.Before(ctx)
		}
		a.SentAt = time.Now()
		if pr, ok := t.Reloader.(signaler.PartialReloader); ok {
			out, err = pr.ReloadExcept(ctx, a.ChangedAt, a.Done)
		} else {
			out, err = t.Reloader.Reload(ctx, a.ChangedAt)
		}
	}
	l.results <- result{a: a, out: out, err: err, at: time.Now()}
}
