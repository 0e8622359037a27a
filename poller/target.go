package poller

import (
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// This file is each target's delivery state machine: what it holds, the
// change it still needs, who of its processes were told already, when to
// retry, and the verification step after a delivery. Every target has its
// own, so one that is down never delays the others.
//
//	idle ──change──▶ pending ──Begin──▶ delivering ──ok──▶ verifying ──ok──▶ idle (holds it)
//	                   ▲  ▲                 │                 │ transient: verify again
//	                   │  └──retryable──────┘                 │ target died
//	                   └──────────────────────────────────────┘
//	rejected (delivering or verifying): idle, holding the old content, until
//	the content changes again.

// Step is what a due attempt must do.
type Step uint8

const (
	// Deliver sends the reload (signaler.Reloader.Reload).
	Deliver Step = iota
	// Verify checks a delivered reload took effect (verify.Verifier's After).
	Verify
)

// Attempt is one delivery or verification to run for a target, handed out
// by Tracker.Begin and returned to Tracker.Finish. It carries its own copy of
// the change, so a newer change confirmed while it runs does not alter it.
type Attempt struct {
	Target int
	Step   Step
	// Content is the change being delivered or verified.
	Content Content
	// ChangedAt is when the scan that first saw the change ended, for
	// signaler.Reloader.Reload: targets started later need no signal.
	ChangedAt time.Time
	// Since is when the first undelivered change was seen (latency).
	Since time.Time
	// Done lists the processes told about this change by earlier attempts;
	// a signaler.PartialReloader skips them.
	Done []signaler.Target
	// Delivered is, for Verify, what the delivery did and when it ended.
	Delivered   signaler.Outcome
	DeliveredAt time.Time
	// SentAt is when the delivery started, right after the verifier's
	// Before: what the verifier compares the application's own reload time
	// with.
	SentAt time.Time
}

// Report says what Tracker.Finish made of an attempt.
type Report struct {
	// Result is the attempt's overall result: for a failed attempt, the
	// result of its error.
	Result signaler.Result
	// Done is set once the target holds the change (delivered, and
	// verified where it is verified).
	Done bool
	// Verifying is set when a delivery succeeded and its verification is
	// due next.
	Verifying bool
	// Stale is set when a newer change was confirmed while the attempt ran:
	// what it delivered is already superseded.
	Stale bool
	// RetryIn is, for an attempt that left the target pending, how long
	// until the next one.
	RetryIn time.Duration
	// NewReason is set when the target is blocked for another reason than
	// at its previous failure: worth a warning, not a debug line.
	NewReason bool
	// Latency is, when Done, the time since the change was first seen.
	Latency time.Duration
}

// targetState is one target's delivery state.
type targetState struct {
	verify bool
	// has is the digest of the content the target holds, when hasValid.
	has      uint64
	hasValid bool
	// pending is the change the target still needs, nil when none.
	pending *change
	// done lists the processes told about pending already.
	done     []signaler.Target
	inFlight bool
	// verifying holds the delivery whose verification is due.
	verifying *Attempt
	// retry is the current backoff; nextTry when the next attempt is due.
	retry   time.Duration
	nextTry time.Time
	blocked signaler.Result // result of the last failure, for NewReason
	failing bool
	// rejected is the digest the application refused: not delivered again
	// until the content changes.
	rejected      uint64
	rejectedValid bool
	// recheck, set after a delivery, is the content delivered; the first
	// scan after recheckAt compares its versions (see Tracker.recheck).
	recheck   *Content
	recheckAt time.Time
}

func (ts *targetState) setPending(c *change) {
	if ts.pending == nil || ts.pending.Digest != c.Digest {
		ts.done = ts.done[:0]
	}
	ts.pending = c
	ts.verifying = nil
	ts.retry, ts.nextTry, ts.failing = 0, time.Time{}, false
	ts.rejectedValid = false
}

func (ts *targetState) clearPending() {
	ts.pending = nil
	ts.verifying = nil
	ts.done = ts.done[:0]
	ts.retry, ts.nextTry, ts.failing = 0, time.Time{}, false
}

// wakeAt returns when this target next needs the loop.
func (ts *targetState) wakeAt() (time.Time, bool) {
	switch {
	case ts.inFlight:
		return time.Time{}, false
	case ts.recheck != nil:
		return ts.recheckAt, true
	case ts.pending != nil:
		return ts.nextTry, true
	}
	return time.Time{}, false
}

func (ts *targetState) due(now time.Time) bool {
	return ts.pending != nil && !ts.inFlight && !now.Before(ts.nextTry)
}

// AppendDue appends to dst the targets whose next attempt is due at now and
// returns the extended slice.
func (t *Tracker) AppendDue(dst []int, now time.Time) []int {
	for i, ts := range t.targets {
		if ts.due(now) {
			dst = append(dst, i)
		}
	}
	return dst
}

// Begin marks target i's due attempt as running and returns it.
func (t *Tracker) Begin(i int) Attempt {
	ts := t.targets[i]
	ts.inFlight = true
	if v := ts.verifying; v != nil {
		return *v
	}
	p := ts.pending
	return Attempt{
		Target: i, Step: Deliver,
		Content:   cloneContent(p.Content),
		ChangedAt: p.seenBy, Since: p.since,
		Done: append([]signaler.Target(nil), ts.done...),
	}
}

// Finish records what attempt a came to at now: for a delivery, the
// reloader's outcome and error; for a verification, the verifier's error.
func (t *Tracker) Finish(a Attempt, out signaler.Outcome, err error, now time.Time) Report {
	ts := t.targets[a.Target]
	ts.inFlight = false
	res := signaler.ResultOf(err)
	if err == nil && a.Step == Deliver && len(out.Signalled) == 0 && len(out.UpToDate) > 0 {
		res = signaler.ResultUpToDate
	}
	r := Report{Result: res}
	current := ts.pending != nil && ts.pending.Digest == a.Content.Digest
	if !current {
		// A newer change (or a revert) was decided while this ran; what it
		// did still counts for what the target holds.
		r.Stale = true
		if res.Delivered() && !(a.Step == Deliver && ts.verify) {
			ts.has, ts.hasValid = a.Content.Digest, true
		}
		return r
	}
	if a.Step == Deliver {
		ts.done = append(ts.done, out.Signalled...)
		ts.done = append(ts.done, out.UpToDate...)
	}
	switch {
	case res.Delivered() && a.Step == Deliver && ts.verify:
		v := a
		v.Step, v.Delivered, v.DeliveredAt, v.Done = Verify, out, now, nil
		ts.verifying = &v
		// The swap window closes with the delivery, not with its
		// verification: the first scan after it is the one to compare.
		ts.recheck, ts.recheckAt = &v.Content, now
		ts.retry, ts.nextTry, ts.failing = 0, time.Time{}, false
		r.Verifying = true
		return r
	case res.Delivered():
		ts.has, ts.hasValid = a.Content.Digest, true
		if a.Step == Deliver {
			ts.recheck, ts.recheckAt = &a.Content, now
		}
		r.Done, r.Latency = true, now.Sub(ts.pending.since)
		ts.clearPending()
		return r
	case res == signaler.ResultRejected:
		ts.rejected, ts.rejectedValid = a.Content.Digest, true
		ts.clearPending()
		return r
	case res == signaler.ResultTargetDied:
		ts.verifying = nil // deliver again: a new process needs it
	case a.Step == Verify:
		// A transient verification error: verify again.
	}
	floor := t.retryFloor
	ceiling := retryMax
	if res.Local() {
		ceiling = floor
	}
	ts.retry = min(max(ts.retry*2, floor), max(ceiling, floor))
	ts.nextTry = now.Add(ts.retry)
	r.NewReason = !ts.failing || ts.blocked != res
	ts.blocked, ts.failing = res, true
	r.RetryIn = ts.retry
	return r
}

// Rejected reports whether target i refused the latest content and waits
// for it to change.
func (t *Tracker) Rejected(i int) bool {
	ts := t.targets[i]
	return ts.rejectedValid && ts.rejected == t.latest.Digest
}
