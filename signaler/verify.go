package signaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// This file verifies a delivered reload: a reload counts as a success only
// once the application shows it accepted it. Three verifiers exist, each in
// its own type: AliveVerifier (the signalled process survived the signal),
// MetricVerifier (the app's own *_config_last_reload_* metrics, in
// verify_metric.go) and ChildrenVerifier (a master/worker server replaced
// its workers).

// Delivery is one reload that reached its targets, as a Check sees it.
type Delivery struct {
	// At is when the signal or request was sent.
	At time.Time
	// Targets are the targets that were sent it (Outcome.Signalled).
	Targets []Target
}

// Verifier confirms that the application accepted a delivered reload.
type Verifier interface {
	// Prepare runs right before a delivery and returns the check for it,
	// since what a check compares with (the app's metrics, a server's
	// workers) must be read before the signal.
	Prepare(ctx context.Context) Check
}

// Check confirms one delivery. It returns nil once the application accepted
// it, a *RejectedError when it refused it, a *TargetDiedError when the
// target is gone, and any other error when the verdict is unknown (the
// verification endpoint is down, nothing happened within the timeout): the
// caller retries those like a failed delivery.
type Check func(ctx context.Context, d Delivery) error

// Verified returns a Reloader that delivers through r and records, right
// before each delivery, what the verifiers compare with; its Verify method
// then runs every verifier's check in order and succeeds only when all do.
// The poll loop calls Verify after a delivery that succeeded (it finds the
// method on the Reloader), and again with backoff while the verdict is
// unknown. With no verifiers it returns r itself.
func Verified(r Reloader, logger *slog.Logger, vs ...Verifier) Reloader {
	if len(vs) == 0 {
		return r
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	v := &verified{r: r, vs: vs, log: logger}
	if p, ok := r.(PartialReloader); ok {
		return &verifiedPartial{verified: v, p: p}
	}
	return v
}

type verified struct {
	r   Reloader
	vs  []Verifier
	log *slog.Logger

	mu     sync.Mutex // deliveries and verifications run on goroutines of their own
	checks []Check    // for the last delivery
	at     time.Time  // when it started
}

// verifiedPartial keeps a PartialReloader's ReloadExcept.
type verifiedPartial struct {
	*verified
	p PartialReloader
}

var (
	_ Reloader        = (*verified)(nil)
	_ PartialReloader = (*verifiedPartial)(nil)
)

// Reload prepares the checks and delivers.
func (v *verified) Reload(ctx context.Context, changedAt time.Time) (Outcome, error) {
	v.prepare(ctx)
	return v.r.Reload(ctx, changedAt)
}

// ReloadExcept prepares the checks and delivers to the targets not in done.
func (v *verifiedPartial) ReloadExcept(ctx context.Context, changedAt time.Time, done []Target) (Outcome, error) {
	v.prepare(ctx)
	return v.p.ReloadExcept(ctx, changedAt, done)
}

func (v *verified) prepare(ctx context.Context) {
	checks := make([]Check, len(v.vs))
	for i, vf := range v.vs {
		checks[i] = vf.Prepare(ctx)
	}
	v.mu.Lock()
	v.checks, v.at = checks, time.Now()
	v.mu.Unlock()
}

// Verify runs the checks of the last delivery on what it reached (out).
// Targets that were up to date need none: they read the new configuration
// at start. It returns nil or the first check's error: a *RejectedError, a
// *TargetDiedError, or another error when the verdict is unknown.
func (v *verified) Verify(ctx context.Context, out Outcome, _ time.Time) error {
	v.mu.Lock()
	checks, at := v.checks, v.at
	v.mu.Unlock()
	if len(out.Signalled) == 0 {
		return nil
	}
	if checks == nil {
		return errors.New("verify: no delivery to verify")
	}
	d := Delivery{At: at, Targets: out.Signalled}
	for _, check := range checks {
		if err := check(ctx, d); err != nil {
			return err
		}
	}
	v.log.Debug("reload verified", "targets", targetNameList(out.Signalled), "took", time.Since(at).Round(time.Millisecond))
	return nil
}

// ReloadAndVerify delivers through r and, when r verifies (see Verified)
// and the delivery succeeded, verifies it at once: what the poll loop does
// in two steps, for callers without one.
func ReloadAndVerify(ctx context.Context, r Reloader, changedAt time.Time) (Outcome, error) {
	out, err := r.Reload(ctx, changedAt)
	if err != nil {
		return out, err
	}
	if v, ok := r.(interface {
		Verify(context.Context, Outcome, time.Time) error
	}); ok {
		err = v.Verify(ctx, out, time.Now())
	}
	return out, err
}

// Unwrap returns the reloader that delivers, so a caller can reach its
// Inspect or Label methods.
func (v *verified) Unwrap() Reloader { return v.r }

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
	if a.procDir == "" {
		a.procDir = "/proc"
	}
	return a
}

// Prepare returns the check; it needs nothing from before the signal.
func (a *AliveVerifier) Prepare(context.Context) Check { return a.check }

func (a *AliveVerifier) check(ctx context.Context, d Delivery) error {
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
func (a *AliveVerifier) same(t Target) error {
	st, err := readStat(a.procDir, t.PID)
	switch {
	case err != nil && isGone(err),
		err == nil && (st.State == 'Z' || st.State == 'X'),
		err == nil && t.StartTicks != 0 && st.StartTicks != t.StartTicks:
		return &TargetDiedError{PID: t.PID, Name: t.Name, Signal: a.sig, After: a.grace}
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
// A child of the target that was not there before the signal is a success;
// the same children at the timeout are a refusal (RELOAD_VERIFY=children).
type ChildrenVerifier struct {
	timeout  time.Duration
	interval time.Duration
	sig      syscall.Signal
	procDir  string
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
	if c.procDir == "" {
		c.procDir = "/proc"
	}
	return c
}

// procEntry is one process in a snapshot of the process table: the PID and
// the start time identify it, as PIDs are reused.
type procEntry struct {
	pid   int
	start uint64
}

// Prepare snapshots the process table: the signal's targets are not known
// yet, so every process's parent is recorded.
func (c *ChildrenVerifier) Prepare(context.Context) Check {
	before, err := c.table()
	return func(ctx context.Context, d Delivery) error {
		if err != nil {
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
}

// wait watches t's children until one that was not in old appears (the
// reload was accepted) or the timeout passes.
func (c *ChildrenVerifier) wait(ctx context.Context, d Delivery, t Target, old []procEntry) error {
	if len(old) == 0 {
		return fmt.Errorf("verify children: pid %d (%s) had no children before %s, so there are no workers to see replaced; RELOAD_VERIFY=children is for master/worker servers such as nginx, haproxy -W or gunicorn",
			t.PID, t.Name, signalName(c.sig))
	}
	alive := NewAliveVerifier(AliveOptions{Signal: c.sig, ProcDir: c.procDir})
	deadline := d.At.Add(c.timeout)
	var now []procEntry
	for {
		if err := alive.same(t); err != nil {
			died := err.(*TargetDiedError)
			died.After = time.Since(d.At)
			return died
		}
		table, err := c.table()
		if err != nil {
			return fmt.Errorf("verify children: %w", err)
		}
		now = table[t.PID]
		for _, e := range now {
			if !slices.Contains(old, e) {
				return nil
			}
		}
		if !time.Now().Before(deadline) {
			break
		}
		if err := sleepUntil(ctx, earliest(time.Now().Add(c.interval), deadline)); err != nil {
			return err
		}
	}
	if slices.Equal(now, old) {
		return &RejectedError{Target: fmt.Sprintf("pid %d (%s)", t.PID, t.Name),
			Answer: fmt.Sprintf("the same children %s still run %s after %s and none replaced them: the server kept its old configuration (check its log; nginx -t, haproxy -c or gunicorn --check-config tell why)",
				pidList(now), c.timeout, signalName(c.sig))}
	}
	return fmt.Errorf("verify children: pid %d (%s) went from children %s to %s within %s of %s, with none new: cannot tell whether it reloaded",
		t.PID, t.Name, pidList(old), pidList(now), c.timeout, signalName(c.sig))
}

// table maps each PID to its live children, sorted by PID.
func (c *ChildrenVerifier) table() (map[int][]procEntry, error) {
	pids, err := listPIDs(c.procDir)
	if err != nil {
		return nil, err
	}
	kids := map[int][]procEntry{}
	for _, pid := range pids {
		st, err := readStat(c.procDir, pid)
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

func targetNameList(ts []Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
		if t.PID > 0 {
			out[i] = fmt.Sprintf("%s (pid %d)", t.Name, t.PID)
		}
	}
	return out
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
