package testenv

import (
	"testing"
	"time"
)

// pollEvery is how often WaitFor re-checks its condition: often enough not
// to slow tests down, rarely enough not to load the machine under test.
const pollEvery = 20 * time.Millisecond

// WaitFor calls cond until it returns nil and fails the test with cond's last
// error if that does not happen within timeout. The timeout is a limit for a
// slow machine, not a speed assertion: pick it generously. cond may itself
// call t.Fatal.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("after %v: %v", timeout, err)
	}
}

// Poll is WaitFor without a test: it returns nil once cond returns nil, or
// cond's last error when timeout has passed.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(pollEvery)
	}
}
