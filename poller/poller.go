// Package poller is pollreload's poll loop: it scans the watched roots on a
// timer, decides when their content really changed, and has the change
// delivered by a signaler.Reloader, retrying until it is.
//
// One goroutine owns all the loop's state and runs the scans, one at a time.
// Run only waits for it, so that a read hung on a dead mount cannot hold up
// shutdown; health checks read a few fields under a mutex and keep answering.
//
//	l, err := poller.New(poller.Options{Roots: roots, Interval: 2 * time.Second, ...})
//	err = l.Run(ctx) // returns when ctx ends
package poller

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/metrics"
	"github.com/pollreload/pollreload/signaler"
)

// Scanner takes one snapshot of a root. *hasher.Hasher is the Scanner.
type Scanner interface {
	Scan(ctx context.Context, root string) (*hasher.Snapshot, error)
}

// Options configure a Loop.
type Options struct {
	Roots    []string
	Interval time.Duration // between scans; stretched when scans are slow
	// Settle is how long new content of a plain tree must stay the same
	// before it is delivered. Kubelet volumes change atomically and are
	// never settled.
	Settle        time.Duration
	ReloadOnStart bool // deliver a reload after the first scan
	// MaxMissed is how many intervals a scan may run before Healthy fails.
	MaxMissed int
	Scanner   Scanner
	Reloader  signaler.Reloader
	Metrics   *metrics.Metrics // nil: metrics on a private registry
	Logger    *slog.Logger     // nil: discard
}

// Retry and backoff bounds.
const (
	retryMin = time.Second
	retryMax = 30 * time.Second
	// A scan taking more than 1/stretchShare of the interval stretches the
	// interval to stretchShare times the scan's duration.
	stretchShare = 4
	jitterShare  = 10 // ±10% of the interval
	minWait      = 20 * time.Millisecond
)

// Loop polls, decides and delivers. Create it with New.
type Loop struct {
	opts Options
	log  *slog.Logger
	m    *metrics.Metrics
	seed uint64 // per-process seed for digests that appear in logs

	mu         sync.Mutex // guards the fields read by Healthy and Ready
	ready      bool
	scanning   bool
	scanStart  time.Time
	scanGen    uint64 // counts scans, so a late watchdog knows its scan ended
	lastScan   time.Time
	effective  time.Duration
	backoffFor time.Duration

	// Owned by the loop goroutine.
	delivered state // what the application has (or the baseline)
	pending   *change
	candidate *change
	retry     time.Duration
	nextTry   time.Time
	scanErrs  int             // consecutive scans with an unreadable root
	logged    map[string]bool // kinds of root errors logged since the last good scan
	stretched bool
	avgScan   time.Duration // moving average of the stat-only scans' durations
	phased    bool          // the random first phase has been applied
	// verify asks for a scan right after a delivery, to catch content that
	// changed between the scan that was delivered and the signal.
	verify      bool
	deliveredAt time.Time
	blockedWhy  string // last delivery failure reason logged for pending
}

// state is the combined content of all roots at one scan.
type state struct {
	digest uint64
	snaps  []*hasher.Snapshot
}

// change is content that differs from what was delivered.
type change struct {
	state
	seen time.Time // start of the first scan that saw this content
	// seenBy is when that scan ended: a target started later read this
	// content (or newer) at its start and needs no signal.
	seenBy time.Time
	since  time.Time // first undelivered change, for the latency histogram
}

type scanResult struct {
	snaps []*hasher.Snapshot
	err   error
	start time.Time
	dur   time.Duration
}

// New checks opts and returns a Loop ready to Run.
func New(opts Options) (*Loop, error) {
	switch {
	case len(opts.Roots) == 0:
		return nil, errors.New("poller: no roots to watch")
	case opts.Interval <= 0:
		return nil, errors.New("poller: interval must be positive")
	case opts.Scanner == nil || opts.Reloader == nil:
		return nil, errors.New("poller: scanner and reloader are required")
	}
	if opts.MaxMissed <= 0 {
		opts.MaxMissed = 3
	}
	l := &Loop{
		opts:      opts,
		log:       opts.Logger,
		m:         opts.Metrics,
		seed:      rand.Uint64(),
		effective: opts.Interval,
		logged:    map[string]bool{},
	}
	if l.log == nil {
		l.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if l.m == nil {
		l.m = metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{})
	}
	l.m.PollInterval.Set(opts.Interval.Seconds())
	l.m.ConfiguredInterval.Set(opts.Interval.Seconds())
	return l, nil
}

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
// the whole idle cost. A watchdog timer counts the ticks a hung scan misses.
func (l *Loop) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		l.setScanning(true, start)
		gen := l.scanGeneration()
		watchdog := time.AfterFunc(l.currentInterval(), func() { l.missedTick(gen) })
		snaps, err := l.scan(ctx)
		watchdog.Stop()
		l.setScanning(false, time.Now())
		if ctx.Err() != nil {
			return // never act on a scan that finished after shutdown began
		}
		res := scanResult{snaps: snaps, err: err, start: start, dur: time.Since(start)}
		l.handle(ctx, res)
		timer.Reset(l.nextWait(res))
	}
}

// missedTick runs on its own goroutine, once per interval while scan number
// gen is still running.
func (l *Loop) missedTick(gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.scanning || l.scanGen != gen {
		return
	}
	l.m.MissedScans.Inc()
	l.log.Warn("previous scan still running; skipping this tick", "running", time.Since(l.scanStart).Round(time.Millisecond))
	time.AfterFunc(l.effective, func() { l.missedTick(gen) })
}

func (l *Loop) scanGeneration() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.scanGen
}

func (l *Loop) scan(ctx context.Context) ([]*hasher.Snapshot, error) {
	snaps := make([]*hasher.Snapshot, 0, len(l.opts.Roots))
	for _, root := range l.opts.Roots {
		s, err := l.opts.Scanner.Scan(ctx, root)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", root, err)
		}
		snaps = append(snaps, s)
	}
	return snaps, nil
}

// handle records a finished scan, decides whether the content changed, and
// attempts a pending delivery.
func (l *Loop) handle(ctx context.Context, res scanResult) {
	l.m.ScanDuration.Observe(res.dur.Seconds())
	if res.err != nil {
		l.scanErrs++
		kind := hasher.ErrorKind(res.err)
		l.m.Scans.WithLabelValues(metrics.ScanError).Inc()
		l.m.ScanErrors.WithLabelValues(kind).Inc()
		if !l.logged[kind] {
			l.logged[kind] = true
			l.log.Warn("cannot scan; keeping the last good state and retrying with backoff", "kind", kind, "err", res.err)
		}
	} else {
		if l.scanErrs > 0 {
			l.log.Info("scans recovered", "failed_scans", l.scanErrs)
			clear(l.logged)
		}
		l.scanErrs = 0
		l.record(res)
		l.decide(l.combine(res.snaps), res.start, res.start.Add(res.dur))
	}
	l.deliver(ctx)
}

// record updates metrics from a successful scan. The hasher logs each
// unreadable or skipped file once, when it first appears.
func (l *Loop) record(res scanResult) {
	var files, bytes, read int64
	partial := false
	for _, s := range res.snaps {
		files += int64(len(s.Files))
		bytes += s.Bytes
		read += s.BytesRead
		for _, e := range s.Errors {
			partial = true
			l.m.ScanErrors.WithLabelValues(e.Kind).Inc()
		}
	}
	result := metrics.ScanOK
	if partial {
		result = metrics.ScanPartial
	}
	l.m.Scans.WithLabelValues(result).Inc()
	l.m.BytesHashed.Add(float64(read))
	l.m.WatchedFiles.Set(float64(files))
	l.m.WatchedBytes.Set(float64(bytes))
}

func (l *Loop) combine(snaps []*hasher.Snapshot) state {
	d := xxhash.New()
	var b [8]byte
	for _, s := range snaps {
		_, _ = d.WriteString(s.Root)
		binary.LittleEndian.PutUint64(b[:], s.Digest)
		_, _ = d.Write(b[:])
	}
	return state{digest: d.Sum64(), snaps: snaps}
}

// decide compares the scan with what was delivered (or is pending) and
// confirms a change once it has settled.
func (l *Loop) decide(cur state, at, end time.Time) {
	if !l.isReady() {
		l.delivered = cur
		l.setReady()
		l.log.Info("baseline taken", "files", filesIn(cur), "digest", l.fingerprint(cur.digest))
		if l.opts.ReloadOnStart {
			// Nothing counts as delivered yet, so the baseline itself is
			// the pending change.
			l.delivered = state{}
			l.pending = &change{state: cur, seen: at, seenBy: end, since: at}
			l.m.ReloadPending.Set(1)
		}
		return
	}
	if l.verify && at.After(l.deliveredAt) {
		l.verify = false
		if cur.digest == l.delivered.digest && swapped(l.delivered, cur) {
			// The application reads its files when the signal arrives, so it
			// may hold a version that came and went between the scan that was
			// delivered and the signal. Nothing tells which: reload again.
			l.log.Info("the volume was swapped while the reload was being delivered; reloading again so the application holds the current version")
			l.delivered = state{}
			l.pending = &change{state: cur, seen: at, seenBy: end, since: at}
			l.m.ReloadPending.Set(1)
			return
		}
	}
	switch {
	case cur.digest == l.delivered.digest:
		if l.candidate != nil {
			l.log.Info("content went back to what was delivered before it settled; nothing to reload")
			l.candidate = nil
		}
		if l.pending != nil {
			l.log.Info("content went back to what was delivered; dropping the pending reload")
			l.pending = nil
			l.m.ReloadPending.Set(0)
		}
		return
	case l.pending != nil && cur.digest == l.pending.digest:
		l.pending.state = cur // the latest scan of it, for swapped
		l.candidate = nil
		return
	}
	if l.needsSettle(cur) {
		if l.candidate == nil || l.candidate.digest != cur.digest {
			l.candidate = &change{state: cur, seen: at, seenBy: end}
			l.log.Debug("content changed; waiting for it to settle", "settle", l.opts.Settle)
			return
		}
		if at.Sub(l.candidate.seen) < l.opts.Settle {
			return
		}
		at = l.candidate.seen
	}
	l.candidate = nil
	l.confirm(cur, at, end)
}

// needsSettle reports whether a root that differs from the last known state
// may be half way through an update: a plain tree, or a kubelet volume whose
// visible links kubelet has not fixed up yet. A kubelet volume whose links are
// all there is complete and needs no settling.
func (l *Loop) needsSettle(cur state) bool {
	if l.opts.Settle <= 0 {
		return false
	}
	prev := l.delivered.snaps
	if l.pending != nil {
		prev = l.pending.snaps
	}
	for i, s := range cur.snaps {
		if i < len(prev) && prev[i].Digest == s.Digest {
			continue
		}
		if s.Kind != hasher.KindKubelet || len(s.LinksPending) > 0 {
			return true
		}
	}
	return false
}

func (l *Loop) confirm(cur state, seen, seenBy time.Time) {
	prev := l.delivered
	since := seen
	if l.pending != nil {
		prev = l.pending.state
		since = l.pending.since
		l.log.Info("a newer change supersedes the pending reload")
	}
	l.m.Changes.Inc()
	for i, s := range cur.snaps {
		var old *hasher.Snapshot
		if i < len(prev.snaps) {
			old = prev.snaps[i]
		}
		if old != nil && old.Digest == s.Digest {
			continue
		}
		added, changed, removed := hasher.Diff(old, s)
		l.log.Info("content changed", "dir", s.Root, "kind", s.Kind.String(),
			"added", limitList(added), "changed", limitList(changed), "removed", limitList(removed),
			"digest", l.fingerprint(s.Digest))
	}
	l.pending = &change{state: cur, seen: seen, seenBy: seenBy, since: since}
	l.retry, l.nextTry, l.blockedWhy = 0, time.Time{}, ""
	l.m.ReloadPending.Set(1)
}

// deliver attempts the pending reload if its backoff has passed.
func (l *Loop) deliver(ctx context.Context) {
	if l.pending == nil || time.Now().Before(l.nextTry) || ctx.Err() != nil {
		return
	}
	out, err := l.opts.Reloader.Reload(ctx, l.pending.seenBy)
	if ctx.Err() != nil {
		return // shutting down; the error, if any, is ours
	}
	if err != nil {
		reason := signaler.Reason(err)
		l.m.Reloads.WithLabelValues(reason).Inc()
		if reason == "permission" || reason == "error" {
			// Waiting for a target or its handler is not a failure yet;
			// a refused signal or a failed request is.
			l.m.LastReloadOK.Set(0)
		}
		// A missing target or one without its handler yet is a local look
		// at /proc, cheap to repeat: retry on every scan, so the reload goes
		// out as soon as the application is ready. A refused signal or a
		// failing HTTP endpoint backs off.
		ceiling := retryMax
		if reason == "no_target" || reason == "not_catching" {
			ceiling = l.opts.Interval
		}
		l.retry = min(max(l.retry*2, retryMin), max(ceiling, retryMin))
		l.nextTry = time.Now().Add(l.retry)
		if reason != l.blockedWhy {
			l.blockedWhy = reason
			l.log.Warn("reload pending", "reason", reason, "retry_in", l.retry, "err", err)
		} else {
			l.log.Debug("reload still pending", "reason", reason, "retry_in", l.retry, "err", err)
		}
		return
	}
	now := time.Now()
	result := "success"
	if len(out.Signalled) == 0 && len(out.UpToDate) > 0 {
		result = "up_to_date"
	}
	l.m.Reloads.WithLabelValues(result).Inc()
	l.m.ReloadLatency.Observe(now.Sub(l.pending.since).Seconds())
	l.m.LastReload.Set(float64(now.UnixNano()) / 1e9)
	l.m.LastReloadOK.Set(1)
	l.m.ReloadPending.Set(0)
	for _, t := range out.Signalled {
		l.log.Info("reload delivered", "pid", t.PID, "target", t.Name, "latency", now.Sub(l.pending.since).Round(time.Millisecond))
	}
	for _, t := range out.UpToDate {
		l.log.Info("target started after the change; not signalled", "pid", t.PID, "target", t.Name)
	}
	l.delivered = l.pending.state
	l.pending = nil
	l.retry, l.nextTry, l.blockedWhy = 0, time.Time{}, ""
	l.verify, l.deliveredAt = true, now
}

// swapped reports whether a kubelet volume of b names another `..data`
// directory than in a: it was swapped in between, maybe more than once.
func swapped(a, b state) bool {
	for i, s := range b.snaps {
		if i < len(a.snaps) && s.Kind == hasher.KindKubelet && s.DataDir != a.snaps[i].DataDir {
			return true
		}
	}
	return false
}

// nextWait picks the time to the next scan: the interval (stretched when
// scans are slow, with jitter so that replicas drift apart), brought forward
// for a settle check or a retry, pushed back while a root is unreadable.
func (l *Loop) nextWait(res scanResult) time.Duration {
	// The steady cost is what a scan costs the filesystem on every tick:
	// a scan that had to read content (a change, a racy file) is a one-off
	// and does not count. A moving average, so that one slow scan stretches
	// the interval for a few ticks instead of flipping it back and forth.
	if res.err == nil && bytesRead(res.snaps) == 0 {
		if l.avgScan == 0 {
			l.avgScan = res.dur
		} else {
			l.avgScan = (7*l.avgScan + 3*res.dur) / 10
		}
	}
	base := max(l.opts.Interval, l.avgScan*stretchShare)
	switch {
	case !l.stretched && base > l.opts.Interval:
		l.stretched = true
		l.log.Warn("scans take a large share of POLL_INTERVAL; stretching the interval to spare the filesystem",
			"scan", res.dur.Round(time.Millisecond), "interval", base.Round(time.Millisecond))
	case l.stretched && l.avgScan*stretchShare*5 < l.opts.Interval*4:
		// Back only once well under the limit, so that scans hovering
		// around it do not log a line every tick.
		l.stretched = false
		l.log.Info("scans are fast again; back to POLL_INTERVAL", "interval", l.opts.Interval)
	}
	backoff := time.Duration(0)
	if l.scanErrs > 0 {
		backoff = min(base<<min(l.scanErrs, 5), max(retryMax, base)) - base
	}
	l.setEffective(base, backoff)
	l.m.PollInterval.Set((base + backoff).Seconds())

	wait := base + backoff
	if !l.phased {
		// The first tick after the first scan lands at a random phase so
		// that replicas started together do not poll a shared server in step.
		l.phased = true
		wait = time.Duration(rand.Int64N(int64(base))) + minWait
	} else {
		j := int64(base) / jitterShare
		if j > 0 {
			wait += time.Duration(rand.Int64N(2*j+1) - j)
		}
	}
	if l.candidate != nil {
		wait = min(wait, time.Until(l.candidate.seen.Add(l.opts.Settle)))
	}
	if l.pending != nil {
		wait = min(wait, time.Until(l.nextTry))
	}
	if l.verify {
		wait = 0
	}
	return max(wait, minWait)
}

func (l *Loop) fingerprint(d uint64) string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], l.seed)
	binary.LittleEndian.PutUint64(b[8:], d)
	return fmt.Sprintf("%016x", xxhash.Sum64(b[:]))
}

// Healthy fails while a scan has run for more than MaxMissed intervals, or
// when no scan has finished for that long.
func (l *Loop) Healthy() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := time.Duration(l.opts.MaxMissed)*l.effective + l.backoffFor
	switch {
	case l.scanning && time.Since(l.scanStart) > limit:
		return fmt.Errorf("scan running for %s (over %d intervals); the filesystem may be hung", time.Since(l.scanStart).Round(time.Millisecond), l.opts.MaxMissed)
	case !l.scanning && !l.lastScan.IsZero() && time.Since(l.lastScan) > limit+l.effective:
		return fmt.Errorf("no scan for %s", time.Since(l.lastScan).Round(time.Millisecond))
	}
	return nil
}

// Ready succeeds once the baseline scan is done.
func (l *Loop) Ready() error {
	if !l.isReady() {
		return errors.New("waiting for the first scan")
	}
	return nil
}

func (l *Loop) isReady() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ready
}

func (l *Loop) setReady() {
	l.mu.Lock()
	l.ready = true
	l.mu.Unlock()
}

func (l *Loop) setScanning(on bool, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.scanning = on
	if on {
		l.scanGen++
		l.scanStart = at
	} else {
		l.lastScan = at
	}
}

func (l *Loop) setEffective(d, backoff time.Duration) {
	l.mu.Lock()
	l.effective, l.backoffFor = d, backoff
	l.mu.Unlock()
}

func (l *Loop) currentInterval() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.effective
}

func bytesRead(snaps []*hasher.Snapshot) int64 {
	var n int64
	for _, s := range snaps {
		n += s.BytesRead
	}
	return n
}

func filesIn(s state) int {
	n := 0
	for _, sn := range s.snaps {
		n += len(sn.Files)
	}
	return n
}

// limitList keeps log lines short for large changes.
func limitList(names []string) []string {
	const most = 20
	if len(names) <= most {
		return names
	}
	return append(names[:most:most], fmt.Sprintf("... and %d more", len(names)-most))
}
