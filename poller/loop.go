package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/internal/logs"
	"github.com/pollreload/pollreload/metrics"
)

// This file is the loop itself: it wires the scanner (scan.go), the tracker
// (tracker.go, target.go, content.go), the schedule (schedule.go) and health
// (health.go) together, and runs deliveries beside the scans, one goroutine
// per attempt (attempt.go), so a slow or down target delays neither the
// scans nor the other targets.

// Loop polls, decides and delivers. Create it with New.
type Loop struct {
	opts    Options
	log     *slog.Logger
	m       *metrics.Metrics
	targets []Target
	health  health

	// Owned by the loop goroutine.
	tracker  *tracker
	sched    *schedule
	fp       *fingerprinter
	comb     combiner
	snaps    []*hasher.Snapshot // reused by every scan
	due      []int
	results  chan result
	wg       sync.WaitGroup
	logged   map[string]bool // kinds of root errors logged since the last good scan
	scanErrs int
	nextScan time.Time
	timer    *time.Timer // the tick; nil outside loop (tests call step)

	watchdog *time.Timer
	watchGen atomic.Uint64

	checks prechecks // the checks before the delivery, shared by the targets
}

// New checks opts and returns a Loop ready to Run.
func New(opts Options) (*Loop, error) {
	targets := opts.Targets
	switch {
	case len(opts.Roots) == 0:
		return nil, errors.New("poller: no roots to watch")
	case opts.Interval <= 0:
		return nil, errors.New("poller: interval must be positive")
	case opts.Scanner == nil || len(targets) == 0:
		return nil, errors.New("poller: scanner and reloader are required")
	}
	if opts.MaxMissed <= 0 {
		opts.MaxMissed = 3
	}
	topts := trackerOptions{Settle: opts.Settle, ReloadOnStart: opts.ReloadOnStart, RetryFloor: opts.Interval}
	for i := range targets {
		t := &targets[i]
		if t.Reloader == nil {
			return nil, fmt.Errorf("poller: target %d has no reloader", i)
		}
		topts.Targets = append(topts.Targets, targetOptions{Verify: t.Verifier != nil})
	}
	l := &Loop{
		opts:    opts,
		log:     logs.OrDiscard(opts.Logger),
		m:       opts.Metrics,
		targets: targets,
		health:  health{maxMissed: opts.MaxMissed, now: time.Now, effective: opts.Interval},
		tracker: newTracker(topts),
		sched:   newSchedule(opts.Interval, rand.Int64N),
		fp:      newFingerprinter(),
		snaps:   make([]*hasher.Snapshot, 0, len(opts.Roots)),
		results: make(chan result, len(targets)),
		logged:  map[string]bool{},
		checks:  prechecks{log: logs.OrDiscard(opts.Logger)},
	}
	if l.m == nil {
		l.m = metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{})
	}
	for _, t := range targets {
		l.m.AddTargets(t.Name)
	}
	l.watchdog = time.AfterFunc(time.Hour, l.missedTick)
	l.watchdog.Stop()
	l.m.SetInterval(opts.Interval)
	l.m.SetConfiguredInterval(opts.Interval)
	return l, nil
}

// Healthy fails while a scan has run for more than MaxMissed intervals, or
// when no scan has finished for that long. Deliveries do not count.
func (l *Loop) Healthy() error { return l.health.Healthy() }

// Ready succeeds once the baseline scan is done.
func (l *Loop) Ready() error { return l.health.Ready() }

// Run polls until ctx ends. The first scan is the baseline: it triggers no
// reload unless Options.ReloadOnStart. Run returns nil on cancellation.
func (l *Loop) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.loop(ctx)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// A scan honours ctx between files; one blocked in a read on a hung
		// mount cannot be interrupted, so it is given a moment and then
		// abandoned rather than holding up shutdown. The loop checks ctx
		// before it delivers anything, so it never signals late.
		select {
		case <-done:
		case <-time.After(500 * time.Millisecond):
			l.log.Warn("abandoning a scan that did not stop; the filesystem may be hung")
		}
	}
	return nil
}

// loop scans on the loop's own goroutine: one goroutine woken per tick is
// the whole idle cost. A watchdog timer, made once, counts the ticks a hung
// scan misses.
func (l *Loop) loop(ctx context.Context) {
	defer l.watchdog.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	l.timer = timer
	defer l.wg.Wait() // attempts in flight end with ctx
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-l.results:
			if ctx.Err() != nil {
				return // shutting down; the error, if any, is ours
			}
			l.finish(r)
			if at, ok := l.tracker.WakeAt(); ok && at.Before(l.nextScan) {
				wait := max(time.Until(at), minWait)
				l.nextScan = time.Now().Add(wait)
				timer.Reset(wait)
			}
		case <-timer.C:
			if _, ok := l.step(ctx); !ok {
				return // never act on a scan that finished after shutdown began
			}
		}
	}
}

// step is one tick: a scan, the tracker's decision, the attempts due, and
// the wait until the next tick, to which it sets l.timer. ok is false once
// ctx has ended.
//
// The next tick is armed before the scan, and the watchdog just after it:
// arming a timer that is due before the others wakes the runtime's poller
// thread, so arming the tick first and the later watchdog second costs one
// such wake-up per tick, not two. After the scan the tick moves only when
// the scan asked for it (a settle, a retry, a stretch, a backoff) or ran past
// it.
func (l *Loop) step(ctx context.Context) (wait time.Duration, ok bool) {
	start := time.Now()
	base, backoff := l.sched.Base(), l.sched.Backoff()
	armed := start.Add(max(l.sched.Next(), minWait))
	l.arm(armed.Sub(start))
	l.tick(ctx, armed.Sub(start))
	if ctx.Err() != nil {
		return 0, false
	}
	now := time.Now()
	next := armed
	if l.sched.Base() != base || l.sched.Backoff() != backoff || next.Before(now.Add(minWait)) {
		next = now.Add(l.sched.Next())
	}
	if at, ok := l.tracker.WakeAt(); ok && at.Before(next) {
		next = at
	}
	next = later(next, now.Add(minWait))
	if !next.Equal(armed) {
		l.arm(next.Sub(now))
	}
	l.nextScan = next
	return next.Sub(now), true
}

// arm sets the tick timer, when the loop runs one.
func (l *Loop) arm(d time.Duration) {
	if l.timer != nil {
		l.timer.Reset(d)
	}
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// tick runs one scan, hands it to the tracker and starts the attempts due.
// The watchdog fires once the scan has run for the interval, or just after
// the next tick if that is later.
func (l *Loop) tick(ctx context.Context, next time.Duration) {
	start := time.Now()
	gen := l.health.beginScan(start)
	l.watchGen.Store(gen)
	l.watchdog.Reset(max(l.health.interval(), next+minWait))
	snaps, err := l.scan(ctx)
	l.watchdog.Stop()
	end := time.Now()
	if missed := l.health.endScan(end); missed > 0 {
		l.log.Info("the scan that was still running has finished", "missed_ticks", missed, "took", end.Sub(start).Round(time.Millisecond))
	}
	if ctx.Err() != nil {
		return
	}
	l.observe(snaps, err, start, end)
	l.startDue(ctx, end)
}

// missedTick runs on the watchdog's goroutine, once per interval while the
// scan it was armed for is still running. The first missed tick of a hang is
// a warning; the others are debug lines, counted in missed_scans_total.
func (l *Loop) missedTick() {
	n, running := l.health.missedTick(l.watchGen.Load())
	if n == 0 {
		return
	}
	l.m.MissedScan()
	if n == 1 {
		l.log.Warn("previous scan still running; skipping ticks until it ends", "running", running.Round(time.Millisecond))
	} else {
		l.log.Debug("previous scan still running; skipping this tick", "running", running.Round(time.Millisecond), "missed_ticks", n)
	}
	l.watchdog.Reset(l.health.interval())
}
