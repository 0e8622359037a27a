package poller

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// This file tests each target's delivery state (target.go): independent
// targets and the verification step.

// TestTrackerTargetsAreIndependent: a target that is down backs off on its
// own; the other is told at once and is not held up.
func TestTrackerTargetsAreIndependent(t *testing.T) {
	s := newSim(t, trackerOptions{Targets: []targetOptions{{}, {}}})
	s.scan(0, plain(1))
	s.scan(time.Second, plain(2))
	if got := s.due(time.Second); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("due = %v; want both", got)
	}
	down := s.tr.Begin(0)
	_, rep := s.deliver(1, time.Second, told, nil)
	if !rep.Done {
		t.Errorf("target 1 while target 0's attempt runs: %+v; want Done", rep)
	}
	for n, wait := range []time.Duration{1, 2, 4} {
		now := at(time.Duration(n+2) * time.Second)
		rep := s.tr.Finish(down, signaler.Outcome{}, errors.New("connection refused"), now)
		if rep.RetryIn != wait*time.Second {
			t.Errorf("target 0 attempt %d: retry in %v; want %v", n+1, rep.RetryIn, wait*time.Second)
		}
		if got := s.tr.AppendDue(nil, now.Add(rep.RetryIn)); !slices.Equal(got, []int{0}) {
			t.Errorf("due = %v; want only the down target", got)
		}
		down = s.tr.Begin(0)
	}
	// Back to the old content: target 1 must be told again, target 0,
	// which never got 2, holds 1 and needs nothing.
	s.tr.Finish(down, signaler.Outcome{}, errors.New("connection refused"), at(10*time.Second))
	d := s.scan(11*time.Second, plain(1))
	if d.observation != Changed {
		t.Fatalf("back to 1 with targets holding 1 and 2: %v; want Changed", d.observation)
	}
	if got := s.due(11 * time.Second); !slices.Equal(got, []int{1}) {
		t.Errorf("due = %v; want only target 1", got)
	}
}

// verifyOutcome runs a delivery that succeeds and returns the verification
// attempt now due.
func verifyStep(t *testing.T, s *sim, d time.Duration) attempt {
	t.Helper()
	if _, rep := s.deliver(0, d, told, nil); !rep.Verifying || rep.Done {
		t.Fatalf("delivery to a verified target: %+v; want Verifying, not Done", rep)
	}
	a := s.tr.Begin(s.due(d)[0])
	if a.step != Verify || a.DeliveredAt != at(d) || len(a.Delivered.Signalled) != 1 {
		t.Fatalf("next attempt = %+v; want the verification of the delivery at %v", a, d)
	}
	return a
}

func TestTrackerVerification(t *testing.T) {
	opts := trackerOptions{Targets: []targetOptions{{Verify: true}}}
	t.Run("transient errors verify again, without delivering again", func(t *testing.T) {
		s := newSim(t, opts)
		s.scan(0, plain(1))
		s.scan(time.Second, plain(2))
		a := verifyStep(t, s, time.Second)
		rep := s.tr.Finish(a, a.Delivered, errors.New("verify URL: connection refused"), at(2*time.Second))
		if rep.Done || rep.RetryIn != time.Second {
			t.Fatalf("transient verification error: %+v; want a retry in 1s", rep)
		}
		b := s.tr.Begin(s.due(3 * time.Second)[0])
		if b.step != Verify {
			t.Fatalf("after a transient error: step %v; want Verify", b.step)
		}
		if rep := s.tr.Finish(b, b.Delivered, nil, at(3*time.Second)); !rep.Done || s.tr.Pending() {
			t.Errorf("verified: %+v, pending %v; want Done, not pending", rep, s.tr.Pending())
		}
	})
	t.Run("rejected content waits for the next change", func(t *testing.T) {
		s := newSim(t, opts)
		s.scan(0, plain(1))
		s.scan(time.Second, plain(2))
		a := verifyStep(t, s, time.Second)
		rep := s.tr.Finish(a, a.Delivered, fmt.Errorf("config_last_reload_successful 0: %w", signaler.ErrRejected), at(2*time.Second))
		if rep.Result != signaler.ResultRejected || s.tr.Pending() || !s.tr.Rejected(0) {
			t.Fatalf("rejected: %+v, pending %v; want rejected and not pending", rep, s.tr.Pending())
		}
		for _, d := range []time.Duration{3 * time.Second, time.Minute, time.Hour} {
			s.scan(d, plain(2))
			if got := s.due(d); len(got) != 0 {
				t.Errorf("at %v the rejected content is due again", d)
			}
		}
		if d := s.scan(2*time.Hour, plain(3)); d.observation != Changed || len(s.due(2*time.Hour)) != 1 {
			t.Errorf("the next change: %v; want Changed and due", d.observation)
		}
	})
	t.Run("a dead target is delivered to again", func(t *testing.T) {
		s := newSim(t, opts)
		s.scan(0, plain(1))
		s.scan(time.Second, plain(2))
		a := verifyStep(t, s, time.Second)
		rep := s.tr.Finish(a, a.Delivered, fmt.Errorf("pid 42 died: %w", signaler.ErrTargetDied), at(2*time.Second))
		if rep.Result != signaler.ResultTargetDied || !s.tr.Pending() {
			t.Fatalf("died: %+v; want target_died, pending", rep)
		}
		if b := s.tr.Begin(s.due(3 * time.Second)[0]); b.step != Deliver {
			t.Errorf("after target_died: step %v; want Deliver", b.step)
		}
	})
	t.Run("a rejection answered by the reloader itself", func(t *testing.T) {
		s := newSim(t, trackerOptions{})
		s.scan(0, plain(1))
		s.scan(time.Second, plain(2))
		_, rep := s.deliver(0, time.Second, signaler.Outcome{}, fmt.Errorf("status 500: %w", signaler.ErrRejected))
		if rep.Result != signaler.ResultRejected || s.tr.Pending() {
			t.Errorf("rejected by HTTP: %+v; want rejected, not pending", rep)
		}
	})
}
