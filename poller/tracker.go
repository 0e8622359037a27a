package poller

import "time"

// This file decides whether content really changed: the baseline, the
// candidate that must settle, the confirmed change every target must get,
// and the re-check after a delivery that catches a volume swapped while the
// reload was being sent. It takes the times it is given and returns what it
// decided; it never reads a clock, sleeps, logs or touches metrics, so tests
// drive it through hours of simulated time in microseconds. Each target's
// own delivery state (pending, retry, verify) is in target.go.

// observation says what tracker.Observe made of a scan.
type observation uint8

const (
	// Unchanged: the content is what the targets should hold.
	Unchanged observation = iota
	// Baseline: the first scan; nothing is delivered unless ReloadOnStart.
	Baseline
	// Settling: new content of a tree that may be half way through an
	// update; it must stay the same for Settle before it is confirmed.
	Settling
	// Reverted: the content went back to what the targets hold before it
	// settled; nothing to reload.
	Reverted
	// Dropped: the content went back to what the targets hold while a
	// reload was pending; the pending reloads were dropped.
	Dropped
	// Changed: a change was confirmed; every target that does not hold it
	// is pending. decision.Prev is what it replaces.
	Changed
)

// decision is what tracker.Observe decided about one scan.
type decision struct {
	observation
	// Prev is, for Changed, the content the change replaces (the last
	// confirmed one), for logging what changed.
	Prev content
	// Superseded is set, for Changed, when a target still had an older
	// change pending.
	Superseded bool
	// Reswapped lists the targets that must be told again because their
	// volume was swapped while their reload was being delivered.
	Reswapped []int
}

// tracker is the change tracker. Create it with newTracker; the loop calls
// Observe after every good scan, and Begin/Finish around every delivery.
// It is not safe for concurrent use: one goroutine owns it.
type tracker struct {
	settle        time.Duration
	reloadOnStart bool
	retryFloor    time.Duration
	started       bool
	// latest is what every target should hold: the baseline or the last
	// confirmed change (its snapshots those of the latest scan of it).
	latest    content
	candidate *change
	targets   []*targetState
	reswapped []int // reused for Decision.Reswapped
}

// trackerOptions configure a tracker.
type trackerOptions struct {
	// Settle is how long new content that may be incomplete (see
	// hasher.Snapshot.Complete) must stay the same before it is confirmed.
	Settle time.Duration
	// ReloadOnStart makes the baseline itself pending for every target.
	ReloadOnStart bool
	// RetryFloor is how often an attempt blocked by a local wait (no target
	// or no handler yet: signaler.Result.Local) is repeated, and where the
	// backoff of other failures starts; at least one second.
	RetryFloor time.Duration
	// Targets describe the targets, one entry each.
	Targets []targetOptions
}

// targetOptions describe one target to the tracker.
type targetOptions struct {
	// Verify says the target's deliveries are followed by a verification
	// step (see Verifier) before they count as delivered.
	Verify bool
}

// newTracker returns a tracker that has seen nothing yet.
func newTracker(opts trackerOptions) *tracker {
	if len(opts.Targets) == 0 {
		opts.Targets = []targetOptions{{}}
	}
	t := &tracker{settle: opts.Settle, reloadOnStart: opts.ReloadOnStart, retryFloor: max(opts.RetryFloor, retryMin)}
	for _, o := range opts.Targets {
		t.targets = append(t.targets, &targetState{verify: o.Verify})
	}
	return t
}

// Observe takes the content of a good scan that ran from start to end and
// decides what it means. It keeps copies, never cur.Snaps itself, so the
// caller may reuse that slice.
func (t *tracker) Observe(cur content, start, end time.Time) decision {
	if !t.started {
		t.started = true
		t.latest = cloneContent(cur)
		for _, ts := range t.targets {
			if t.reloadOnStart {
				// Nothing counts as delivered yet, so the baseline itself
				// is the pending change.
				ts.setPending(&change{content: t.latest, seen: start, seenBy: end, since: start})
			} else {
				ts.has, ts.hasValid = cur.Digest, true
			}
		}
		return decision{observation: Baseline}
	}
	d := decision{Reswapped: t.recheck(cur, start, end)}
	switch {
	case cur.Digest == t.latest.Digest:
		// The latest scan of it, so that a swap is measured against the
		// version last seen, not the first.
		copyInto(&t.latest, cur)
		for _, ts := range t.targets {
			if ts.pending != nil && ts.pending.Digest == cur.Digest {
				copyInto(&ts.pending.content, cur)
			}
		}
		if t.candidate != nil {
			t.candidate = nil
			d.observation = Reverted
		}
		return d
	case t.allHold(cur.Digest):
		// Back to what every target holds: nothing to deliver, and no need
		// to settle content that was delivered before.
		t.latest = cloneContent(cur)
		t.candidate = nil
		d.observation = Reverted
		for _, ts := range t.targets {
			if ts.pending != nil {
				d.observation = Dropped
			}
			ts.clearPending()
		}
		return d
	}
	if t.needsSettle(cur) {
		if t.candidate == nil || t.candidate.Digest != cur.Digest {
			t.candidate = &change{content: cloneContent(cur), seen: start, seenBy: end}
			d.observation = Settling
			return d
		}
		if start.Sub(t.candidate.seen) < t.settle {
			return d
		}
		start = t.candidate.seen
	}
	t.candidate = nil
	d.observation, d.Prev = Changed, t.latest
	t.latest = cloneContent(cur)
	for _, ts := range t.targets {
		since := start
		if ts.pending != nil {
			d.Superseded = true
			since = ts.pending.since
		}
		if ts.hasValid && ts.has == cur.Digest {
			ts.clearPending() // this target holds it already (A→B→A)
			continue
		}
		ts.setPending(&change{content: t.latest, seen: start, seenBy: end, since: since})
	}
	return d
}

// recheck looks, on the first scan that started after a target's delivery,
// whether the volume was swapped away and back while the reload was being
// delivered. The application reads its files when the signal arrives, so it
// may hold a version that came and went between the scan that was delivered
// and the signal. Nothing tells which: such a target is told again.
func (t *tracker) recheck(cur content, start, end time.Time) []int {
	t.reswapped = t.reswapped[:0]
	for i, ts := range t.targets {
		if ts.recheck == nil || !start.After(ts.recheckAt) {
			continue
		}
		holds := ts.hasValid && ts.has == cur.Digest
		verifying := ts.verifying != nil && ts.verifying.content.Digest == cur.Digest
		if verifying && ts.inFlight {
			continue // decide once the verification in flight has ended
		}
		was := ts.recheck
		ts.recheck = nil
		if (holds || verifying) && cur.Digest == was.Digest && swapped(was.Snaps, cur.Snaps) {
			ts.hasValid = false
			ts.setPending(&change{content: cloneContent(cur), seen: start, seenBy: end, since: start})
			t.reswapped = append(t.reswapped, i)
		}
	}
	if len(t.reswapped) == 0 {
		return nil
	}
	return t.reswapped
}

// allHold reports whether every target holds content with digest d.
func (t *tracker) allHold(d uint64) bool {
	for _, ts := range t.targets {
		if !ts.hasValid || ts.has != d {
			return false
		}
	}
	return true
}

// needsSettle reports whether a root that differs from the latest content
// may be half way through an update (see hasher.Snapshot.Complete).
func (t *tracker) needsSettle(cur content) bool {
	if t.settle <= 0 {
		return false
	}
	prev := t.latest.Snaps
	for i, s := range cur.Snaps {
		if i < len(prev) && prev[i].Digest == s.Digest {
			continue
		}
		if !s.Complete() {
			return true
		}
	}
	return false
}

// SettleDeadline returns when the candidate may be confirmed, if there is
// one.
func (t *tracker) SettleDeadline() (time.Time, bool) {
	if t.candidate == nil {
		return time.Time{}, false
	}
	return t.candidate.seen.Add(t.settle), true
}

// Pending reports whether any target still waits for a change (to be
// delivered or verified).
func (t *tracker) Pending() bool {
	for _, ts := range t.targets {
		if ts.pending != nil {
			return true
		}
	}
	return false
}

// WakeAt returns the earliest time something is due: a settled candidate, a
// retry, a verification, or the re-check scan after a delivery. The loop
// scans no later than that.
func (t *tracker) WakeAt() (time.Time, bool) {
	at, ok := t.SettleDeadline()
	for _, ts := range t.targets {
		w, due := ts.wakeAt()
		if due && (!ok || w.Before(at)) {
			at, ok = w, true
		}
	}
	return at, ok
}
