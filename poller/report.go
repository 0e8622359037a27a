package poller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/signaler"
)

// This file is what the loop counts and logs: the tracker's decisions, each
// attempt's outcome process by process, and failures worded once per reason.

// report logs what the tracker decided.
func (l *Loop) report(d decision, cur content) {
	for _, i := range d.Reswapped {
		l.log.Info("the volume was swapped while the reload was being delivered; reloading again so the application holds the current version", l.targetAttr(i))
	}
	switch d.observation {
	case Baseline:
		l.health.setReady()
		l.log.Info("baseline taken", "files", filesIn(cur.Snaps), "digest", l.fp.of(cur.Digest))
		l.m.SetPending(l.tracker.Pending())
	case Settling:
		l.log.Debug("content changed; waiting for it to settle", "settle", l.opts.Settle)
	case Reverted:
		l.log.Info("content went back to what was delivered before it settled; nothing to reload")
	case Dropped:
		l.log.Info("content went back to what was delivered; dropping the pending reload")
	case Changed:
		if d.Superseded {
			l.log.Info("a newer change supersedes the pending reload")
		}
		l.m.Change()
		for i, s := range cur.Snaps {
			var old *hasher.Snapshot
			if i < len(d.Prev.Snaps) {
				old = d.Prev.Snaps[i]
			}
			if old != nil && old.Digest == s.Digest {
				continue
			}
			added, changed, removed := hasher.Diff(old, s)
			l.log.Info("content changed", "dir", s.Root, "kind", s.Kind.String(),
				"added", limitList(added), "changed", limitList(changed), "removed", limitList(removed),
				"digest", l.fp.of(s.Digest))
		}
	}
}

// finish hands an attempt's result to the tracker, then counts and logs it.
func (l *Loop) finish(r result) {
	rep := l.tracker.Finish(r.a, r.out, r.err, r.at)
	defer l.m.SetPending(l.tracker.Pending())
	t := l.targets[r.a.Target]
	target := l.targetAttr(r.a.Target)
	if r.a.step == Verify {
		switch {
		case rep.Done:
			// The end of a partial delivery that told no process this time
			// (the others left) counted its success when verified.
			if d := r.a.Delivered; len(d.Signalled) > 0 || len(d.Skipped) == 0 {
				l.m.Reload(t.Name, signaler.ResultSuccess)
			}
			l.m.Delivered(r.at, rep.Latency)
			l.log.Info("reload verified", target, "latency", rep.Latency.Round(time.Millisecond))
		case rep.PartialVerified:
			// As for a target that is not verified: a delivery that reached
			// some processes counts one success, once they took it.
			l.m.Reload(t.Name, signaler.ResultSuccess)
			l.log.Info("reload verified for the processes that took it; the others stay pending", target,
				"verified", len(r.a.Delivered.Signalled))
		case rep.Result == signaler.ResultUnverified:
			l.m.Reload(t.Name, rep.Result)
			l.log.Warn("reload delivered, but unverified: not counted a success", target, "err", r.err)
		case rep.Result == signaler.ResultRejected || rep.Result == signaler.ResultTargetDied:
			l.m.Reload(t.Name, rep.Result)
			l.logFailure(rep, target, r.err)
		case r.err != nil:
			// The reload went out but its outcome is unknown (no verdict within
			// RELOAD_TIMEOUT, the verify URL down): say so once per reason, as
			// for a pending delivery, then quietly while it repeats.
			level := slog.LevelDebug
			if rep.NewReason {
				level = slog.LevelWarn
			}
			l.log.Log(context.Background(), level, "cannot verify the reload yet; verifying again", target, "retry_in", rep.RetryIn, "err", r.err)
		}
		return
	}
	verifying := t.Verifier != nil
	latency := r.at.Sub(r.a.Since).Round(time.Millisecond)
	if len(r.out.Signalled) > 0 && !verifying {
		l.m.Reload(t.Name, signaler.ResultSuccess)
	}
	for _, p := range r.out.Signalled {
		l.log.Info("reload delivered", "pid", p.PID, "target", p.Name, "latency", latency)
	}
	for _, p := range r.out.UpToDate {
		l.log.Info("target started after the change; not signalled", "pid", p.PID, "target", p.Name)
	}
	if r.err == nil && len(r.out.Signalled) == 0 && len(r.out.UpToDate) > 0 {
		l.m.Reload(t.Name, signaler.ResultUpToDate)
	}
	if rep.Done {
		l.m.Delivered(r.at, rep.Latency)
	}
	if r.err == nil {
		return
	}
	if len(r.out.Failed) == 0 {
		l.m.Reload(t.Name, rep.Result)
		l.logFailure(rep, target, r.err)
		return
	}
	// Some processes got it, some did not: only those stay pending, and
	// each is named.
	for _, f := range r.out.Failed {
		l.m.Reload(t.Name, f.Result())
		rep.Result = f.Result()
		l.logFailure(rep, target, f.Err, "pid", f.Target.PID, "name", f.Target.Name)
	}
	if len(r.a.Done)+len(r.out.Signalled)+len(r.out.Skipped) > 0 && rep.NewReason {
		l.log.Info("reload pending for some processes only; the others have it and are not signalled again",
			target, "told", len(r.a.Done)+len(r.out.Signalled), "pending", len(r.out.Failed))
	}
}

// logFailure logs a failed attempt: a warning when the reason is new, a
// debug line while it repeats.
func (l *Loop) logFailure(rep report, target slog.Attr, err error, args ...any) {
	if rep.Result == signaler.ResultRejected && fromPrecheck(err) {
		l.log.Warn("the check before the delivery refused the new configuration; nothing was sent, and nothing is until the content changes", append(args, target, "err", err)...)
		return
	}
	if rep.Result == signaler.ResultRejected {
		l.log.Warn("the application rejected the new configuration; not retried until the content changes", append(args, target, "err", err)...)
		return
	}
	level := slog.LevelDebug
	msg := "reload still pending"
	if rep.NewReason {
		level, msg = slog.LevelWarn, "reload pending"
	}
	if rep.Result == signaler.ResultTargetDied {
		level = slog.LevelError
	}
	l.log.Log(context.Background(), level, msg, append(args, target, "reason", rep.Result.String(), "retry_in", rep.RetryIn, "err", err)...)
}

// targetAttr names target i in logs when there are several.
func (l *Loop) targetAttr(i int) slog.Attr {
	if len(l.targets) < 2 {
		return slog.Attr{}
	}
	name := l.targets[i].Name
	if name == "" {
		name = fmt.Sprint(i)
	}
	return slog.String("reload_target", name)
}

func filesIn(snaps []*hasher.Snapshot) int {
	n := 0
	for _, s := range snaps {
		n += len(s.Files)
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
