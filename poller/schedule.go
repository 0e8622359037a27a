package poller

import (
	"time"
)

// This file decides when the next scan runs: the interval, stretched while
// scans take a large share of it, backed off while a root is unreadable,
// with jitter so that replicas drift apart and a random first phase so that
// replicas started together do not poll a shared server in step. Like the
// tracker it takes what happened and returns durations; it never reads a
// clock.

// Retry, backoff and timing bounds.
const (
	retryMin = time.Second
	retryMax = 30 * time.Second
	// A scan taking more than 1/stretchShare of the interval stretches the
	// interval to stretchShare times the scan's duration.
	stretchShare = 4
	jitterShare  = 10 // ±10% of the interval
	minWait      = 20 * time.Millisecond
)

// schedule is the scan schedule. Create it with newSchedule.
type schedule struct {
	interval time.Duration
	// randN returns a uniform value in [0, n); tests make it fixed.
	randN     func(n int64) int64
	avgScan   time.Duration // moving average of the stat-only scans' durations
	stretched bool
	phased    bool // the random first phase has been applied
	scanErrs  int  // consecutive scans with an unreadable root
}

// newSchedule returns the schedule for interval. randN supplies the jitter
// and the first phase: a uniform value in [0, n).
func newSchedule(interval time.Duration, randN func(n int64) int64) *schedule {
	return &schedule{interval: interval, randN: randN}
}

// stretch says how a scan changed the interval's stretching.
type stretch uint8

const (
	// StretchSame: no change.
	StretchSame stretch = iota
	// StretchOn: scans now take a large share of the interval; it is
	// stretched to spare the filesystem.
	StretchOn
	// StretchOff: scans are fast again; back to the interval.
	StretchOff
)

// Scanned records a finished scan: how long it took, whether it read file
// content (a change, a racy file: a one-off that does not count towards the
// steady cost), and whether a root was unreadable.
func (s *schedule) Scanned(dur time.Duration, readContent, failed bool) stretch {
	if failed {
		s.scanErrs++
	} else {
		s.scanErrs = 0
	}
	// A moving average, so that one slow scan stretches the interval for a
	// few ticks instead of flipping it back and forth.
	if !failed && !readContent {
		if s.avgScan == 0 {
			s.avgScan = dur
		} else {
			s.avgScan = (7*s.avgScan + 3*dur) / 10
		}
	}
	base := s.Base()
	switch {
	case !s.stretched && base > s.interval:
		s.stretched = true
		return StretchOn
	case s.stretched && s.avgScan*stretchShare*5 < s.interval*4:
		// Back only once well under the limit, so that scans hovering
		// around it do not log a line every tick.
		s.stretched = false
		return StretchOff
	}
	return StretchSame
}

// Base is the interval, stretched while scans are slow.
func (s *schedule) Base() time.Duration {
	return max(s.interval, s.avgScan*stretchShare)
}

// Backoff is the extra wait while roots are unreadable: the base doubled per
// failed scan, up to 30 s (or the base, if longer) in all.
func (s *schedule) Backoff() time.Duration {
	if s.scanErrs == 0 {
		return 0
	}
	base := s.Base()
	return min(base<<min(s.scanErrs, 5), max(retryMax, base)) - base
}

// Next returns the wait before the next scan: base plus backoff, with
// ±10% jitter, or a random phase within the base after the first scan.
func (s *schedule) Next() time.Duration {
	base := s.Base()
	wait := base + s.Backoff()
	if !s.phased {
		s.phased = true
		return time.Duration(s.randN(int64(base))) + minWait
	}
	if j := int64(base) / jitterShare; j > 0 {
		wait += time.Duration(s.randN(2*j+1) - j)
	}
	return wait
}
