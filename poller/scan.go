package poller

import (
	"context"
	"time"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/metrics"
)

// This file is one scan of the roots and what the loop records of it: the
// metrics, the scan errors, the tracker's decision and the schedule's
// stretch.

// scan snapshots every root into l.snaps. The hasher's errors name the root.
func (l *Loop) scan(ctx context.Context) ([]*hasher.Snapshot, error) {
	l.snaps = l.snaps[:0]
	for _, root := range l.opts.Roots {
		s, err := l.opts.Scanner.Scan(ctx, root)
		if err != nil {
			return nil, err
		}
		l.snaps = append(l.snaps, s)
	}
	return l.snaps, nil
}

// observe records a finished scan and lets the tracker decide on it.
func (l *Loop) observe(snaps []*hasher.Snapshot, err error, start, end time.Time) {
	dur := end.Sub(start)
	var read int64
	if err != nil {
		l.scanErrs++
		kind := hasher.ErrorKind(err)
		l.m.ObserveScan(metrics.Scan{Duration: dur, Err: true})
		l.m.ScanError(kind)
		l.health.scanFailed(err)
		if !l.logged[kind] {
			l.logged[kind] = true
			l.log.Warn("cannot scan; keeping the last good state and retrying with backoff", "kind", kind, "err", err)
		}
	} else {
		if l.scanErrs > 0 {
			l.log.Info("scans recovered", "failed_scans", l.scanErrs)
			clear(l.logged)
			l.scanErrs = 0
		}
		ms := metrics.Scan{Duration: dur}
		for _, s := range snaps {
			ms.Files += int64(len(s.Files))
			ms.Bytes += s.Bytes
			read += s.BytesRead
			for _, e := range s.Errors {
				ms.Partial = true
				l.m.ScanError(e.Kind)
			}
		}
		ms.BytesRead = read
		l.m.ObserveScan(ms)
		cur := content{Digest: l.comb.digest(snaps), Snaps: snaps}
		l.report(l.tracker.Observe(cur, start, end), cur)
	}
	switch l.sched.Scanned(dur, read > 0, err != nil) {
	case StretchOn:
		l.log.Warn("scans take a large share of the poll interval; stretching the interval to spare the filesystem",
			"scan", dur.Round(time.Millisecond), "interval", l.sched.Base().Round(time.Millisecond))
	case StretchOff:
		l.log.Info("scans are fast again; back to the configured poll interval", "interval", l.opts.Interval)
	}
	base, backoff := l.sched.Base(), l.sched.Backoff()
	l.health.setInterval(base, backoff)
	l.m.SetInterval(base + backoff)
	l.m.SetPending(l.tracker.Pending())
}
