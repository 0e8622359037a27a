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

// step is what a due attempt must do.
type step uint8

const (
	// Deliver sends the reload (signaler.Reloader.Reload).
	Deliver step = iota
	// Verify checks a delivered reload took effect (verify.Verifier's After).
	Verify
)

// attempt is one delivery or verification to run for a target, handed out
// by tracker.Begin and returned to tracker.Finish. It carries its own copy of
// the change, so a newer change confirmed while it runs does not alter it.
type attempt struct {
	Target int
	step   step
	// content is the change being delivered or verified.
	content content
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
	// Partial is set, for Verify, when the delivery reached only some of
	// the target's processes: once verified it counts one success, and the
	// others stay pending.
	Partial bool
}

// report says what tracker.Finish made of an attempt.
type report struct {
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
	// PartialVerified is set when the verification of a partial delivery
	// succeeded: the processes told took the change, one success, while
	// the others stay pending.
	PartialVerified bool
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
	verifying *attempt
	// retry is the current backoff; nextTry when the next attempt is due.
	retry   time.Duration
	nextTry time.Time
	// resumeAt is, while a partial delivery is verified, when the
	// delivery to the processes it missed is due again.
	resumeAt time.Time
	blocked  signaler.Result // result of the last failure, for NewReason
	failing  bool
	// rejected is the digest the application refused: not delivered again
	// until the content changes.
	rejected      uint64
	rejectedValid bool
	// recheck, set after a delivery, is the content delivered; the first
	// scan after recheckAt compares its versions (see tracker.recheck).
	recheck   *content
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
func (t *tracker) AppendDue(dst []int, now time.Time) []int {
	for i, ts := range t.targets {
		if ts.due(now) {
			dst = append(dst, i)
		}
	}
	return dst
}

// Begin marks target i's due attempt as running and returns it.
func (t *tracker) Begin(i int) attempt {
	ts := t.targets[i]
	ts.inFlight = true
	if v := ts.verifying; v != nil {
		return *v
	}
	p := ts.pending
	return attempt{
		Target: i, step: Deliver,
		content:   cloneContent(p.content),
		ChangedAt: p.seenBy, Since: p.since,
		Done: append([]signaler.Target(nil), ts.done...),
	}
}

// Finish records what attempt a came to at now: for a delivery, the
// reloader's outcome and error; for a verification, the verifier's error.
func (t *tracker) Finish(a attempt, out signaler.Outcome, err error, now time.Time) report {
	ts := t.targets[a.Target]
	ts.inFlight = false
	res := signaler.ResultOf(err)
	if err == nil && a.step == Deliver && len(out.Signalled) == 0 && len(out.UpToDate) > 0 {
		res = signaler.ResultUpToDate
	}
	r := report{Result: res}
	current := ts.pending != nil && ts.pending.Digest == a.content.Digest
	if !current {
		// A newer change (or a revert) was decided while this ran; what it
		// did still counts for what the target holds.
		r.Stale = true
		if res.Delivered() && !(a.step == Deliver && ts.verify) {
			ts.has, ts.hasValid = a.content.Digest, true
		}
		return r
	}
	if a.step == Deliver {
		ts.done = append(ts.done, out.Signalled...)
		ts.done = append(ts.done, out.UpToDate...)
	}
	if a.step == Verify && a.Partial && res.Delivered() {
		// The processes told have the change; the others are still due,
		// at the backoff their failure set.
		ts.verifying = nil
		ts.nextTry = ts.resumeAt
		r.PartialVerified = true
		return r
	}
	switch {
	case res.Delivered() && a.step == Deliver && ts.verify:
		v := a
		v.step, v.Delivered, v.DeliveredAt, v.Done = Verify, out, now, nil
		ts.verifying = &v
		// The swap window closes with the delivery, not with its
		// verification: the first scan after it is the one to compare.
		ts.recheck, ts.recheckAt = &v.content, now
		ts.retry, ts.nextTry, ts.failing = 0, time.Time{}, false
		r.Verifying = true
		return r
	case res.Delivered():
		ts.has, ts.hasValid = a.content.Digest, true
		if a.step == Deliver {
			ts.recheck, ts.recheckAt = &a.content, now
		}
		r.Done, r.Latency = true, now.Sub(ts.pending.since)
		ts.clearPending()
		return r
	case res == signaler.ResultUnverified:
		// Delivered, alive, and no evidence either way: the target holds
		// the content, but it is not counted a success.
		ts.has, ts.hasValid = a.content.Digest, true
		ts.clearPending()
		return r
	case res == signaler.ResultRejected:
		ts.rejected, ts.rejectedValid = a.content.Digest, true
		ts.clearPending()
		return r
	case res == signaler.ResultTargetDied:
		ts.verifying = nil // deliver again: a new process needs it
	case a.step == Verify:
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
	if a.step == Deliver && ts.verify && len(out.Signalled) > 0 && res != signaler.ResultTargetDied {
		// A partial delivery: the processes it reached are verified at
		// once, as after a full one, so that they count a success while
		// the others keep the reload pending (retried at resumeAt).
		v := a
		v.step, v.Delivered, v.DeliveredAt, v.Done, v.Partial = Verify, signaler.Outcome{Signalled: out.Signalled}, now, nil, true
		ts.verifying = &v
		ts.resumeAt, ts.nextTry = ts.nextTry, now
		r.Verifying = true
	}
	return r
}

// Rejected reports whether target i refused the latest content and waits
// for it to change.
func (t *tracker) Rejected(i int) bool {
	ts := t.targets[i]
	return ts.rejectedValid && ts.rejected == t.latest.Digest
}
