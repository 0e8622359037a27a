package poller

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file runs the check before the delivery (Target.Precheck, such as
// RELOAD_CHECK_COMMAND) once per content: the first target whose delivery
// is due runs it, the others due at the same time wait for the same run,
// and a verdict (pass or rejection) is kept for that content, so the check
// runs again only when the content changes. A run without a verdict is not
// kept: the next attempt, after its backoff, runs it again.

// prechecks holds each check's runs, keyed by check and content digest.
type prechecks struct {
	log *slog.Logger

	mu   sync.Mutex
	runs map[precheckKey]*precheckRun
}

type precheckKey struct {
	check  verify.Precheck
	digest uint64
}

type precheckRun struct {
	done chan struct{}
	err  error // set before done closes
}

// final reports whether err is a verdict worth keeping.
func final(err error) bool { return err == nil || errors.Is(err, signaler.ErrRejected) }

// run returns c's verdict on the content with this digest, running c at
// most once per content while its verdicts hold.
func (p *prechecks) run(ctx context.Context, c verify.Precheck, digest uint64) error {
	k := precheckKey{c, digest}
	p.mu.Lock()
	if r, ok := p.runs[k]; ok {
		select {
		case <-r.done:
			if final(r.err) {
				p.mu.Unlock()
				return r.err
			}
			// No verdict last time: run it again below.
		default:
			p.mu.Unlock()
			select {
			case <-r.done:
				return r.err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if p.runs == nil {
		p.runs = map[precheckKey]*precheckRun{}
	}
	// Only the latest content's run of each check is kept.
	for old, r := range p.runs {
		if old.check == c && old.digest != digest {
			select {
			case <-r.done:
				delete(p.runs, old)
			default:
			}
		}
	}
	r := &precheckRun{done: make(chan struct{})}
	p.runs[k] = r
	p.mu.Unlock()

	r.err = c.Check(ctx)
	close(r.done)
	if r.err == nil {
		p.log.Debug("the check before the delivery passed", "check", c)
	}
	return r.err
}

// precheckError marks an attempt's error as the check's, not the
// delivery's, for the log line.
type precheckError struct{ err error }

func (e *precheckError) Error() string { return e.err.Error() }
func (e *precheckError) Unwrap() error { return e.err }

// fromPrecheck reports whether err came from the check before the delivery.
func fromPrecheck(err error) bool {
	var pe *precheckError
	return errors.As(err, &pe)
}
