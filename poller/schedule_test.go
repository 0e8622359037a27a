package poller

import (
	"testing"
	"time"
)

// mid is a randN that always returns the middle of its range: no jitter,
// and a first phase of half the interval.
func mid(n int64) int64 { return n / 2 }

func TestScheduleSteady(t *testing.T) {
	s := newSchedule(time.Second, mid)
	s.Scanned(time.Millisecond, true, false)
	if got, want := s.Next(), 500*time.Millisecond+minWait; got != want {
		t.Errorf("first wait = %v; want %v (a random phase within the interval)", got, want)
	}
	for i := 0; i < 5; i++ {
		s.Scanned(time.Millisecond, false, false)
		if got := s.Next(); got != time.Second {
			t.Errorf("tick %d: wait = %v; want 1s", i, got)
		}
	}
}

func TestScheduleJitter(t *testing.T) {
	for _, tt := range []struct {
		name string
		r    func(int64) int64
		want time.Duration
	}{
		{"lowest", func(int64) int64 { return 0 }, 900 * time.Millisecond},
		{"highest", func(n int64) int64 { return n - 1 }, 1100 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSchedule(time.Second, tt.r)
			s.Next() // the phase
			if got := s.Next(); got != tt.want {
				t.Errorf("wait = %v; want %v (±10%%)", got, tt.want)
			}
		})
	}
}

// TestScheduleStretch: stat-only scans that take a large share of the
// interval stretch it to four times their moving average, once; scans that
// read content are one-offs and stretch nothing; fast scans bring it back.
func TestScheduleStretch(t *testing.T) {
	s := newSchedule(time.Second, mid)
	for i := 0; i < 10; i++ {
		if st := s.Scanned(2*time.Second, true, false); st != StretchSame {
			t.Fatalf("a content-reading scan: %v; want no stretch", st)
		}
	}
	if got := s.Base(); got != time.Second {
		t.Fatalf("base after content-reading scans = %v; want 1s", got)
	}
	if st := s.Scanned(400*time.Millisecond, false, false); st != StretchOn {
		t.Fatalf("a 400ms stat-only scan at 1s: %v; want StretchOn", st)
	}
	if got := s.Base(); got != 1600*time.Millisecond {
		t.Errorf("base = %v; want 1.6s (4 × 400ms)", got)
	}
	if st := s.Scanned(400*time.Millisecond, false, false); st != StretchSame {
		t.Errorf("second slow scan: %v; want StretchSame (said once)", st)
	}
	// The moving average comes down over a few fast ticks, not at once.
	var off int
	for i := 1; i <= 20; i++ {
		if s.Scanned(time.Millisecond, false, false) == StretchOff {
			off = i
			break
		}
	}
	if off < 2 {
		t.Errorf("back to the interval after %d fast scans; want a few (a moving average)", off)
	}
	if got := s.Base(); got != time.Second {
		t.Errorf("base after fast scans = %v; want 1s", got)
	}
}

func TestScheduleErrorBackoff(t *testing.T) {
	s := newSchedule(time.Second, mid)
	s.Next()
	for i, want := range []time.Duration{2, 4, 8, 16, 30, 30, 30} {
		s.Scanned(time.Millisecond, false, true)
		if got := s.Next(); got != want*time.Second {
			t.Errorf("after %d failed scans: wait = %v; want %v", i+1, got, want*time.Second)
		}
	}
	s.Scanned(time.Millisecond, false, false)
	if got := s.Next(); got != time.Second {
		t.Errorf("after a good scan: wait = %v; want 1s", got)
	}
}
