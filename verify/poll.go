package verify

import (
	"context"
	"errors"
	"sync"
	"time"
)

// This file holds what the status-endpoint sources share: waiting for an
// application's verdict by reading it again until a deadline.

// beforeRetry bounds how long Before retries a status endpoint that does
// not answer: a master that re-execs itself (haproxy -W, uwsgi) closes its
// socket for a moment.
const beforeRetry = 3 * time.Second

// pollUntil calls read every interval until it returns done, an error that
// is final, or the deadline passes; then it returns read's last error (a
// "not yet"), or ctx's.
func pollUntil(ctx context.Context, deadline time.Time, interval time.Duration, read func(ctx context.Context) (done bool, err error)) error {
	for {
		done, err := read(ctx)
		if done {
			return err
		}
		if !time.Now().Before(deadline) {
			return err
		}
		next := time.Now().Add(interval)
		if next.After(deadline) {
			next = deadline
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// orDefault returns d unless it is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// hooks turns a source's prepare (what Before reads, and the After that
// compares with it) into the Verifier's two methods.
type hooks struct {
	mu    sync.Mutex // Before and After run on the loop's goroutines
	after func(context.Context, Delivery) error
}

func (h *hooks) set(after func(context.Context, Delivery) error) {
	h.mu.Lock()
	h.after = after
	h.mu.Unlock()
}

func (h *hooks) run(ctx context.Context, d Delivery) error {
	h.mu.Lock()
	after := h.after
	h.mu.Unlock()
	if after == nil {
		return errors.New("verify: After without Before")
	}
	return after(ctx, d)
}
