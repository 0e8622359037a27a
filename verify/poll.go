package verify

import (
	"context"
	"time"
)

// This file holds what the status-endpoint sources share: waiting for an
// application's verdict by reading it again until a deadline.

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
