package poller

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/signaler"
)

// These tests drive the tracker in simulated time: every event carries its
// own time, nothing sleeps, and hours pass in microseconds.

var t0 = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// plain is the content of one plain tree with digest d.
func plain(d uint64) content {
	return content{Digest: d, Snaps: []*hasher.Snapshot{{Root: "/etc/app", Kind: hasher.KindPlain, Digest: d}}}
}

// kubelet is the content of one kubelet volume with digest d, read from
// version dir, with the given visible links still missing.
func kubelet(d uint64, dir string, linksPending ...string) content {
	return content{Digest: d, Snaps: []*hasher.Snapshot{{
		Root: "/etc/app", Kind: hasher.KindKubelet, DataDir: dir, LinksPending: linksPending, Digest: d,
	}}}
}

// sim is a tracker with helpers that play the loop's part.
type sim struct {
	t  *testing.T
	tr *tracker
}

func newSim(t *testing.T, opts trackerOptions) *sim {
	if opts.RetryFloor == 0 {
		opts.RetryFloor = time.Second
	}
	return &sim{t: t, tr: newTracker(opts)}
}

// scan observes c in a scan that started at d and took 1 ms.
func (s *sim) scan(d time.Duration, c content) decision {
	return s.tr.Observe(c, at(d), at(d+time.Millisecond))
}

func (s *sim) due(d time.Duration) []int { return s.tr.AppendDue(nil, at(d)) }

// deliver begins target i's due attempt and finishes it at d with out, err.
func (s *sim) deliver(i int, d time.Duration, out signaler.Outcome, err error) (attempt, report) {
	s.t.Helper()
	if !slices.Contains(s.due(d), i) {
		s.t.Fatalf("at %v: target %d not due", d, i)
	}
	a := s.tr.Begin(i)
	return a, s.tr.Finish(a, out, err, at(d))
}

var told = signaler.Outcome{Signalled: []signaler.Target{{PID: 42, Name: "app", StartTicks: 7}}}

func TestTrackerDecisions(t *testing.T) {
	type step struct {
		d    time.Duration
		c    content
		want observation
		due  bool // a delivery is due right after the scan
	}
	const A, B, C = 0xa, 0xb, 0xc
	tests := []struct {
		name  string
		opts  trackerOptions
		steps []step
	}{
		{"unchanged content is never delivered", trackerOptions{}, []step{
			{0, plain(A), Baseline, false},
			{time.Second, plain(A), Unchanged, false},
			{time.Hour, plain(A), Unchanged, false},
		}},
		{"reload on start makes the baseline pending", trackerOptions{ReloadOnStart: true}, []step{
			{0, plain(A), Baseline, true},
		}},
		{"a plain change settles before it is confirmed", trackerOptions{Settle: 5 * time.Second}, []step{
			{0, plain(A), Baseline, false},
			{time.Second, plain(B), Settling, false},
			{5 * time.Second, plain(B), Unchanged, false},
			{6 * time.Second, plain(B), Changed, true},
		}},
		{"a change that moves again restarts settling", trackerOptions{Settle: 5 * time.Second}, []step{
			{0, plain(A), Baseline, false},
			{time.Second, plain(B), Settling, false},
			{4 * time.Second, plain(C), Settling, false},
			{8 * time.Second, plain(C), Unchanged, false},
			{9 * time.Second, plain(C), Changed, true},
		}},
		{"A→B→A within settle delivers nothing", trackerOptions{Settle: time.Hour}, []step{
			{0, plain(A), Baseline, false},
			{time.Second, plain(B), Settling, false},
			{2 * time.Second, plain(A), Reverted, false},
			{3 * time.Hour, plain(A), Unchanged, false},
		}},
		{"without settle a plain change is confirmed at once", trackerOptions{}, []step{
			{0, plain(A), Baseline, false},
			{time.Second, plain(B), Changed, true},
		}},
		{"a kubelet swap with all links is atomic and never settled", trackerOptions{Settle: time.Hour}, []step{
			{0, kubelet(A, "..1"), Baseline, false},
			{time.Second, kubelet(A, "..2"), Unchanged, false},
			{2 * time.Second, kubelet(B, "..3"), Changed, true},
		}},
		{"a kubelet swap waits for its visible links", trackerOptions{Settle: time.Hour}, []step{
			{0, kubelet(A, "..1"), Baseline, false},
			{time.Second, kubelet(B, "..2", "new.conf"), Settling, false},
			{2 * time.Second, kubelet(B, "..2", "new.conf"), Unchanged, false},
			{3 * time.Second, kubelet(B, "..2"), Changed, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, tt.opts)
			for _, st := range tt.steps {
				got := s.scan(st.d, st.c)
				if got.observation != st.want {
					t.Errorf("at %v: Observe(%x) = %v; want %v", st.d, st.c.Digest, got.observation, st.want)
				}
				if due := len(s.due(st.d+time.Millisecond)) > 0; due != st.due {
					t.Errorf("at %v: delivery due = %v; want %v", st.d, due, st.due)
				}
			}
		})
	}
}

// TestTrackerRetries checks the retry schedule by result: a wait for a
// target (local: no target, no handler yet) is retried every second, the
// retry floor; a refused signal or a failed request backs off 1, 2, 4 ... 30 s.
func TestTrackerRetries(t *testing.T) {
	tests := []struct {
		err  error
		want []time.Duration
	}{
		{signaler.ErrNoTarget, []time.Duration{1, 1, 1, 1, 1, 1}},
		{fmt.Errorf("pid 7: %w", signaler.ErrNotCatching), []time.Duration{1, 1, 1, 1, 1, 1}},
		{&signaler.PermissionError{PID: 7, Err: errors.New("EPERM")}, []time.Duration{1, 2, 4, 8, 16, 30, 30}},
		{errors.New("connection refused"), []time.Duration{1, 2, 4, 8, 16, 30, 30}},
	}
	for _, tt := range tests {
		t.Run(signaler.ResultOf(tt.err).String(), func(t *testing.T) {
			s := newSim(t, trackerOptions{})
			s.scan(0, plain(1))
			s.scan(time.Second, plain(2))
			now := time.Second
			for n, want := range tt.want {
				want *= time.Second
				_, rep := s.deliver(0, now, signaler.Outcome{}, tt.err)
				if rep.RetryIn != want {
					t.Errorf("attempt %d: retry in %v; want %v", n+1, rep.RetryIn, want)
				}
				if got := s.due(now + want - time.Millisecond); len(got) != 0 {
					t.Errorf("attempt %d: due again after %v; want after %v", n+1, want-time.Millisecond, want)
				}
				if rep.NewReason != (n == 0) {
					t.Errorf("attempt %d: NewReason = %v; want %v (warn once per reason)", n+1, rep.NewReason, n == 0)
				}
				now += want
			}
			_, rep := s.deliver(0, now, told, nil)
			if !rep.Done || s.tr.Pending() {
				t.Errorf("after a delivery: Done = %v, Pending = %v; want true, false", rep.Done, s.tr.Pending())
			}
			if rep.Latency != now-time.Second {
				t.Errorf("latency = %v; want %v", rep.Latency, now-time.Second)
			}
		})
	}
}

func TestTrackerPendingDroppedWhenContentGoesBack(t *testing.T) {
	s := newSim(t, trackerOptions{})
	s.scan(0, plain(1))
	s.scan(time.Second, plain(2))
	s.deliver(0, time.Second, signaler.Outcome{}, signaler.ErrNoTarget)
	if d := s.scan(2*time.Second, plain(1)); d.observation != Dropped {
		t.Errorf("back to the delivered content: %v; want Dropped", d.observation)
	}
	if s.tr.Pending() || len(s.due(time.Hour)) != 0 {
		t.Error("still pending after the content went back")
	}
}

func TestTrackerNewerChangeSupersedesPending(t *testing.T) {
	s := newSim(t, trackerOptions{})
	s.scan(0, plain(1))
	s.scan(time.Second, plain(2))
	s.deliver(0, time.Second, signaler.Outcome{}, signaler.ErrNoTarget)
	d := s.scan(3*time.Second, plain(3))
	if d.observation != Changed || !d.Superseded || d.Prev.Digest != 2 {
		t.Fatalf("Observe = %+v; want Changed, superseding 2", d)
	}
	// The new change is due at once, and its latency counts from the first.
	a, rep := s.deliver(0, 3*time.Second, told, nil)
	if a.content.Digest != 3 || rep.Latency != 2*time.Second {
		t.Errorf("delivered %x with latency %v; want 3 after 2s", a.content.Digest, rep.Latency)
	}
}

// TestTrackerChangeDuringDelivery confirms a change while the previous one
// is being delivered: the delivery still counts, and the new one follows.
func TestTrackerChangeDuringDelivery(t *testing.T) {
	s := newSim(t, trackerOptions{})
	s.scan(0, plain(1))
	s.scan(time.Second, plain(2))
	a := s.tr.Begin(s.due(time.Second)[0])
	if d := s.scan(1500*time.Millisecond, plain(3)); d.observation != Changed {
		t.Fatalf("Observe(3) = %v; want Changed", d.observation)
	}
	if got := s.due(1500 * time.Millisecond); len(got) != 0 {
		t.Errorf("due while the target's attempt runs: %v; want none", got)
	}
	if rep := s.tr.Finish(a, told, nil, at(2*time.Second)); !rep.Stale || rep.Done {
		t.Errorf("Finish = %+v; want Stale, not Done", rep)
	}
	b, rep := s.deliver(0, 2*time.Second, told, nil)
	if b.content.Digest != 3 || !rep.Done {
		t.Errorf("second delivery: %x, %+v; want 3, Done", b.content.Digest, rep)
	}
}

// TestTrackerSwapDuringDelivery swaps a kubelet volume away and back while
// the reload is delivered: same digest, another version. The first scan
// that starts after the delivery sees it and makes the target pending again;
// later identical swaps are no change.
func TestTrackerSwapDuringDelivery(t *testing.T) {
	s := newSim(t, trackerOptions{})
	s.scan(0, kubelet(1, "..1"))
	s.scan(time.Second, kubelet(2, "..2"))
	s.deliver(0, 2*time.Second, told, nil)
	// A scan that started before the delivery ended proves nothing.
	if d := s.tr.Observe(kubelet(2, "..4"), at(1500*time.Millisecond), at(2100*time.Millisecond)); len(d.Reswapped) != 0 {
		t.Errorf("scan started before the delivery ended: Reswapped = %v; want none", d.Reswapped)
	}
	if w, ok := s.tr.WakeAt(); !ok || w.After(at(2*time.Second)) {
		t.Errorf("WakeAt = %v, %v; want a scan right after the delivery", w, ok)
	}
	d := s.scan(2100*time.Millisecond, kubelet(2, "..4"))
	if !slices.Equal(d.Reswapped, []int{0}) {
		t.Fatalf("Reswapped = %v; want [0]", d.Reswapped)
	}
	if _, rep := s.deliver(0, 2100*time.Millisecond, told, nil); !rep.Done {
		t.Errorf("second delivery: %+v; want Done", rep)
	}
	if d := s.scan(2200*time.Millisecond, kubelet(2, "..4")); d.observation != Unchanged || len(d.Reswapped) != 0 {
		t.Errorf("the re-check scan after the second delivery: %+v; want Unchanged", d)
	}
	for i, dir := range []string{"..5", "..6", "..7"} {
		d := time.Duration(3+i) * time.Second
		if dec := s.scan(d, kubelet(2, dir)); dec.observation != Unchanged || len(dec.Reswapped) != 0 {
			t.Errorf("identical swap to %s: %+v; want Unchanged", dir, dec)
		}
		if len(s.due(d)) != 0 {
			t.Errorf("identical swap to %s made a delivery due", dir)
		}
	}
}

// TestTrackerPartialDelivery: of two processes, one is told and one is
// refused. Only the refused one stays pending: the next attempt passes the
// told one as done, so a PartialReloader skips it.
func TestTrackerPartialDelivery(t *testing.T) {
	s := newSim(t, trackerOptions{})
	s.scan(0, plain(1))
	s.scan(time.Second, plain(2))
	ok := signaler.Target{PID: 10, Name: "dupapp", StartTicks: 100}
	bad := signaler.Target{PID: 11, Name: "dupapp", StartTicks: 101}
	failure := fmt.Errorf("pid 11: %w", signaler.ErrNotCatching)
	out := signaler.Outcome{Signalled: []signaler.Target{ok}, Failed: []signaler.Failure{{Target: bad, Err: failure}}}
	a, rep := s.deliver(0, time.Second, out, failure)
	if len(a.Done) != 0 || rep.Done || rep.Result != signaler.ResultNotCatching {
		t.Fatalf("first attempt: Done %v, report %+v; want nothing done before, not_catching", a.Done, rep)
	}
	for n := 2; n <= 5; n++ {
		now := time.Duration(n) * time.Second
		a, _ := s.deliver(0, now, signaler.Outcome{Skipped: []signaler.Target{ok}, Failed: []signaler.Failure{{Target: bad, Err: failure}}}, failure)
		if !slices.Equal(a.Done, []signaler.Target{ok}) {
			t.Errorf("attempt %d: Done = %v; want the told process only", n, a.Done)
		}
	}
	if _, rep := s.deliver(0, 6*time.Second, signaler.Outcome{Signalled: []signaler.Target{bad}, Skipped: []signaler.Target{ok}}, nil); !rep.Done {
		t.Errorf("once the second takes it: %+v; want Done", rep)
	}
	// The next change starts with nobody told.
	s.scan(7*time.Second, plain(3))
	if a := s.tr.Begin(0); len(a.Done) != 0 {
		t.Errorf("a new change starts with Done = %v; want none", a.Done)
	}
}
