package verify

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// This file holds the interface (see doc.go), All, which runs several
// verifiers as one, and the two verifiers that read /proc: AliveVerifier
// (the signalled process survived the signal) and ChildrenVerifier (a
// master/worker server replaced its workers). MetricVerifier is in
// metric.go.

// Delivery is one reload that reached its targets, as After sees it.
type Delivery struct {
	// At is when the delivery started: right after Before returned.
	At time.Time
	// Targets are the targets that were sent it (Outcome.Signalled).
	Targets []signaler.Target
}

// Verifier confirms that the application accepted a delivered reload. The
// poll loop calls Before right before each delivery to the target and,
// once the delivery succeeded, After; while After's verdict is unknown it
// calls After again with backoff, without delivering again. The two are
// never called at the same time for one target, and a Verifier belongs to
// one target: what Before records is for that target's next After.
type Verifier interface {
	// Before records what After compares with (the app's metrics, a
	// server's workers). It must return promptly and must not fail the
	// delivery: a reading that can be slow is bounded, and a missing one is
	// for After to report.
	Before(ctx context.Context)
	// After returns nil once the application accepted the delivery, an
	// error wrapping signaler.ErrRejected (a *signaler.RejectedError) when
	// it refused it, one wrapping signaler.ErrTargetDied when the target is
	// gone, and any other error when the verdict is unknown. It bounds its
	// own wait (RELOAD_TIMEOUT) and honours ctx.
	After(ctx context.Context, d Delivery) error
}

// All returns a Verifier that runs vs in order: Before calls each one's
// Before, After succeeds only when every After does and returns the first
// error. Nil entries are skipped; with none left, All returns nil.
func All(vs ...Verifier) Verifier {
	vs = slices.DeleteFunc(slices.Clone(vs), func(v Verifier) bool { return v == nil })
	switch len(vs) {
	case 0:
		return nil
	case 1:
		return vs[0]
	}
	return all(vs)
}

type all []Verifier

func (a all) Before(ctx context.Context) {
	for _, v := range a {
		v.Before(ctx)
	}
}

func (a all) After(ctx context.Context, d Delivery) error {
	for _, v := range a {
		if err := v.After(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// Unwrap returns the verifiers All combined, for callers that describe them.
func (a all) Unwrap() []Verifier { return a }

// Deliver runs one delivery through r with v's hooks around it, as the poll
// loop does in two steps: Before, the delivery, and After on what it
// reached when it succeeded (no After when no process was signalled). For
// callers without a loop, such as tests and examples; v may be nil.
func Deliver(ctx context.Context, r signaler.Reloader, v Verifier, changedAt time.Time) (signaler.Outcome, error) {
	if v != nil {
		v.Before(ctx)
	}
	at := time.Now()
	out, err := r.Reload(ctx, changedAt)
	if err != nil || v == nil || len(out.Signalled) == 0 {
		return out, err
	}
	return out, v.After(ctx, Delivery{At: at, Targets: out.Signalled})
}

// AliveOptions configures an AliveVerifier.
type AliveOptions struct {
	// Grace is how long after the signal the process must still run; zero
	// means 500ms. A process without a handler dies at once; one that
	// crashes while loading a bad config takes a little longer.
	Grace time.Duration
	// Signal names the signal in the error; zero means SIGHUP.
	Signal syscall.Signal
	// ProcDir is where procfs is mounted; empty means /proc.
	ProcDir string
}

// AliveVerifier checks that every signalled process still runs, as the same
// process (PID and start time), a short grace after the signal.
type AliveVerifier struct {
	grace   time.Duration
	sig     syscall.Signal
	procDir string
}

// NewAliveVerifier returns an AliveVerifier.
func NewAliveVerifier(opts AliveOptions) *AliveVerifier {
	a := &AliveVerifier{grace: opts.Grace, sig: opts.Signal, procDir: opts.ProcDir}
	if a.grace <= 0 {
		a.grace = 500 * time.Millisecond
	}
	if a.sig == 0 {
		a.sig = syscall.SIGHUP
	}
	return a
}

// Before does nothing: the check needs nothing from before the signal.
func (a *AliveVerifier) Before(context.Context) {}

// After waits for the grace after the delivery and checks every signalled
// process still runs.
func (a *AliveVerifier) After(ctx context.Context, d Delivery) error {
	if err := sleepUntil(ctx, d.At.Add(a.grace)); err != nil {
		return err
	}
	for _, t := range d.Targets {
		if t.PID <= 0 {
			continue // an HTTP target
		}
		if err := a.same(t); err != nil {
			return err
		}
	}
	return nil
}

// same returns a *TargetDiedError unless t still runs as the same process.
func (a *AliveVerifier) same(t signaler.Target) error {
	st, err := signaler.ReadProcStat(a.procDir, t.PID)
	switch {
	case err != nil && signaler.IsGone(err),
		err == nil && (st.State == 'Z' || st.State == 'X'),
		err == nil && t.StartTicks != 0 && st.StartTicks != t.StartTicks:
		return &signaler.TargetDiedError{PID: t.PID, Name: t.Name, Signal: a.sig, After: a.grace}
	case err != nil:
		return fmt.Errorf("verify pid %d (%s) is alive: %w", t.PID, t.Name, err)
	}
	return nil
}

// ChildrenOptions configures a ChildrenVerifier.
type ChildrenOptions struct {
	// Timeout bounds the wait for new children (RELOAD_TIMEOUT); zero means
	// 5s.
	Timeout time.Duration
	// Interval is the time between two looks at /proc; zero means 100ms.
	Interval time.Duration
	// Signal names the signal in errors; zero means SIGHUP.
	Signal syscall.Signal
	// ProcDir is where procfs is mounted; empty means /proc.
	ProcDir string
}

// ChildrenVerifier confirms a reload of a master/worker server (nginx,
// haproxy -W, gunicorn): the master answers a good configuration by starting
// new workers, and a bad one by logging an error and keeping the old ones.
// The old workers replaced (as many new children as there were old ones,
// or new ones once all old ones left, seen twice in a row) is a success;
// old workers still running and no new generation at the timeout is a
// refusal (RELOAD_VERIFY=children). See children.go for the rules.
type ChildrenVerifier struct {
	timeout  time.Duration
	interval time.Duration
	sig      syscall.Signal
	procDir  string

	mu        sync.Mutex // Before and After run on the loop's goroutines
	before    map[int][]procEntry
	beforeErr error
	prepared  bool
}

// NewChildrenVerifier returns a ChildrenVerifier.
func NewChildrenVerifier(opts ChildrenOptions) *ChildrenVerifier {
	c := &ChildrenVerifier{timeout: opts.Timeout, interval: opts.Interval, sig: opts.Signal, procDir: opts.ProcDir}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.interval <= 0 {
		c.interval = 100 * time.Millisecond
	}
	if c.sig == 0 {
		c.sig = syscall.SIGHUP
	}
	return c
}

// procEntry is one process in a snapshot of the process table: the PID and
// the start time identify it, as PIDs are reused.
type procEntry struct {
	pid   int
	start uint64
}

// Before snapshots the process table: the signal's targets are not known
// yet, so every process's parent is recorded. It reads /proc only.
func (c *ChildrenVerifier) Before(context.Context) {
	before, err := c.table()
	c.mu.Lock()
	c.before, c.beforeErr, c.prepared = before, err, true
	c.mu.Unlock()
}

// After watches each signalled process's children until one that was not
// there at Before appears, or the timeout passes.
func (c *ChildrenVerifier) After(ctx context.Context, d Delivery) error {
	c.mu.Lock()
	before, err, prepared := c.before, c.beforeErr, c.prepared
	c.mu.Unlock()
	switch {
	case !prepared:
		return fmt.Errorf("verify children: no snapshot of the workers before the delivery")
	case err != nil:
		return fmt.Errorf("verify children: %w", err)
	}
	for _, t := range d.Targets {
		if t.PID <= 0 {
			continue
		}
		if err := c.wait(ctx, d, t, before[t.PID]); err != nil {
			return err
		}
	}
	return nil
}

// wait watches t's children until the old workers are replaced (see
// replaced) or the timeout passes. A target whose children are not workers
// (sshd, postgres), or that has none, cannot be judged by them: that is a
// setup error, said with the fix.
func (c *ChildrenVerifier) wait(ctx context.Context, d Delivery, t signaler.Target, old []procEntry) error {
	if err := childrenUnfit(c.procDir, t.PID, t.Name, len(old), c.sig); err != nil {
		return err
	}
	alive := NewAliveVerifier(AliveOptions{Signal: c.sig, ProcDir: c.procDir})
	deadline := d.At.Add(c.timeout)
	var now, lastNew []procEntry
	for {
		if err := alive.same(t); err != nil {
			died := err.(*signaler.TargetDiedError)
			died.After = time.Since(d.At)
			return died
		}
		table, err := c.table()
		if err != nil {
			return fmt.Errorf("verify children: %w", err)
		}
		now = table[t.PID]
		fresh := replaced(old, now)
		// Two looks in a row see the same new workers: a helper that lives
		// a moment (a cache loader, a check the master forks) is not one.
		if fresh != nil && lastNew != nil && slices.Equal(fresh, lastNew) {
			return nil
		}
		lastNew = fresh
		if !time.Now().Before(deadline) {
			if fresh != nil {
				return nil // a new generation at the last look: no second look left
			}
			break
		}
		if err := sleepUntil(ctx, earliest(time.Now().Add(c.interval), deadline)); err != nil {
			return err
		}
	}
	if anyStillRuns(old, now) {
		return &signaler.RejectedError{Target: fmt.Sprintf("pid %d (%s)", t.PID, t.Name),
			Answer: fmt.Sprintf("no new generation of workers replaced the old ones %s within %s of %s (now %s): the server kept its old configuration (check its log; nginx -t, haproxy -c or gunicorn --check-config tell why)",
				pidList(old), c.timeout, signaler.SignalName(c.sig), pidList(now))}
	}
	return fmt.Errorf("verify children: pid %d (%s) went from children %s to %s within %s of %s: its old workers are gone and none replaced them, so cannot tell whether it reloaded",
		t.PID, t.Name, pidList(old), pidList(now), c.timeout, signaler.SignalName(c.sig))
}

// table maps each PID to its live children, sorted by PID.
func (c *ChildrenVerifier) table() (map[int][]procEntry, error) {
	pids, err := signaler.ListPIDs(c.procDir)
	if err != nil {
		return nil, err
	}
	kids := map[int][]procEntry{}
	for _, pid := range pids {
		st, err := signaler.ReadProcStat(c.procDir, pid)
		if err != nil || st.State == 'Z' || st.State == 'X' {
			continue // gone meanwhile, or a zombie on its way out
		}
		kids[st.PPID] = append(kids[st.PPID], procEntry{pid: pid, start: st.StartTicks})
	}
	for _, k := range kids {
		slices.SortFunc(k, func(a, b procEntry) int { return a.pid - b.pid })
	}
	return kids, nil
}

// Children returns the PIDs of pid's live children, for `pollreload check`.
func (c *ChildrenVerifier) Children(pid int) ([]int, error) {
	table, err := c.table()
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range table[pid] {
		out = append(out, e.pid)
	}
	return out, nil
}

func pidList(es []procEntry) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = strconv.Itoa(e.pid)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Describer is a Verifier (or Precheck) that can say what it checks, in
// one line, for `pollreload check`: the daemon's own objects describe
// themselves, so check repeats no rule.
type Describer interface {
	Describe() string
}

// List returns the verifiers v runs, in order: the ones All combined, or v
// itself; none for nil.
func List(v Verifier) []Verifier {
	switch v := v.(type) {
	case nil:
		return nil
	case all:
		return slices.Clone(v)
	}
	return []Verifier{v}
}

// Describe says what the check does.
func (a *AliveVerifier) Describe() string {
	return fmt.Sprintf("the signalled process must still run %s after the signal", a.grace)
}

// Describe says what the check does; the caller names the setting that
// chose it.
func (c *ChildrenVerifier) Describe() string {
	return fmt.Sprintf("a new generation of workers replacing the old children of the signalled process within %s of %s", c.timeout, signaler.SignalName(c.sig))
}

// Timeout returns how long a new child may take to appear.
func (c *ChildrenVerifier) Timeout() time.Duration { return c.timeout }
