package signaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// startSlack absorbs the imprecision of process start times: starttime is in
// 10 ms ticks, /proc/uptime has 10 ms resolution, and file timestamps come
// from a coarse clock a jiffy behind. Decisions that skip a signal (target
// already up to date, PID file stale) demand this much margin, so a rounding
// error can only cause an extra signal, never a missed one.
const startSlack = 100 * time.Millisecond

// ProcessOptions configures a Process.
type ProcessOptions struct {
	// Names are the process names to match (PROCESS_NAME). Exactly one of
	// Names and PIDFile is set.
	Names []string
	// PIDFile is a file holding the PID to signal (PID_FILE). It is read
	// again on every delivery, as the app may have restarted.
	PIDFile string
	// Signal is the reload signal; zero means SIGHUP.
	Signal syscall.Signal
	// Policy picks among matches by name; empty means PolicyRoots.
	Policy Policy
	// Force sends the signal even when the target has no handler for it.
	Force bool
	// ProcDir is where procfs is mounted; empty means /proc.
	ProcDir string
	// Logger receives delivery logs; nil discards them.
	Logger *slog.Logger
}

// Process signals processes found in /proc by name or through a PID file.
type Process struct {
	names   []string
	pidFile string
	sig     syscall.Signal
	policy  Policy
	force   bool
	procDir string
	self    int
	log     *slog.Logger
}

// NewProcess returns a Process for the options, or an error if they are
// incomplete or contradictory.
func NewProcess(opts ProcessOptions) (*Process, error) {
	var names []string
	for _, n := range opts.Names {
		if n = strings.TrimSpace(n); n != "" {
			if err := CheckName(n); err != nil {
				return nil, fmt.Errorf("new process reloader: %w", err)
			}
			if strings.Contains(n, "/") {
				n = filepath.Clean(n)
			}
			names = append(names, n)
		}
	}
	switch {
	case len(names) == 0 && opts.PIDFile == "":
		return nil, errors.New("new process reloader: no process name and no PID file; set one")
	case len(names) > 0 && opts.PIDFile != "":
		return nil, errors.New("new process reloader: both process names and a PID file; set one, not both")
	}
	policy := opts.Policy
	switch policy {
	case "":
		policy = PolicyRoots
	case PolicyRoots, PolicyAll, PolicyOldest:
	default:
		return nil, fmt.Errorf("new process reloader: invalid target policy %q: want roots, all or oldest", policy)
	}
	sig, procDir, log, err := defaults(opts.Signal, opts.ProcDir, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("new process reloader: %w", err)
	}
	return &Process{
		names:   names,
		pidFile: opts.PIDFile,
		sig:     sig,
		policy:  policy,
		force:   opts.Force,
		procDir: procDir,
		self:    os.Getpid(),
		log:     log,
	}, nil
}

// Reload signals every selected target that started before changedAt.
// Targets that started later already read the new configuration and are
// listed in Outcome.UpToDate; a zero changedAt signals every target. Errors
// for several targets are joined, and each failing target is listed in
// Outcome.Failed with its own error.
func (p *Process) Reload(ctx context.Context, changedAt time.Time) (Outcome, error) {
	return p.ReloadExcept(ctx, changedAt, nil)
}

// ReloadExcept is Reload that does not signal the processes in done (same
// PID and start time): they were signalled for this change already.
func (p *Process) ReloadExcept(ctx context.Context, changedAt time.Time, done []Target) (Outcome, error) {
	targets, err := p.targets()
	if err != nil {
		return Outcome{}, err
	}
	var out Outcome
	var errs []error
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		target := Target{PID: t.PID, Name: t.name(), StartTicks: t.StartTicks}
		if slices.ContainsFunc(done, target.Same) {
			out.Skipped = append(out.Skipped, target)
			continue
		}
		if startedAfter(t.StartTime, changedAt) {
			p.log.Debug("target started after the change; not signalled", "pid", t.PID, "name", t.name(), "started", t.StartTime)
			out.UpToDate = append(out.UpToDate, target)
			continue
		}
		if err := p.signal(t); err != nil {
			errs = append(errs, err)
			out.Failed = append(out.Failed, Failure{Target: target, Err: err})
			continue
		}
		p.log.Debug("signalled", "pid", t.PID, "name", t.name(), "signal", signalName(p.sig))
		out.Signalled = append(out.Signalled, target)
	}
	return out, errors.Join(errs...)
}

// signal delivers the signal to one target, running the safety check on
// the process the signal will really reach.
func (p *Process) signal(t process) error {
	targetUID := -1
	check := func() error {
		uid, err := ready(p.procDir, t.PID, t.name(), p.sig, p.force, p.log)
		targetUID = uid
		if err != nil && isGone(err) {
			return fmt.Errorf("%w: pid %d exited after lookup", ErrNoTarget, t.PID)
		}
		return err // wrapped below with the pid and name
	}
	err := deliverSignal(p.procDir, t.PID, t.StartTicks, p.sig, check)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM):
		return &PermissionError{PID: t.PID, Name: t.name(), Signal: p.sig, UID: os.Geteuid(), TargetUID: targetUID, Err: err}
	case errors.Is(err, ErrNoTarget), errors.Is(err, ErrNotCatching):
		return err
	}
	var nr *NotReloadingError
	if errors.As(err, &nr) {
		return nr
	}
	return fmt.Errorf("send %s to pid %d (%s): %w", signalName(p.sig), t.PID, t.name(), err)
}

// targets returns the processes a reload goes to now.
func (p *Process) targets() ([]process, error) {
	if p.pidFile != "" {
		t, err := p.fromPIDFile()
		if err != nil {
			return nil, err
		}
		return []process{t}, nil
	}
	res, err := findByName(p.procDir, p.names, p.self)
	if err != nil {
		return nil, err
	}
	if len(res.matches) == 0 {
		return nil, noTargetError(p.names, p.procDir, res)
	}
	return selectTargets(res.matches, p.policy), nil
}

// Candidate is one process Inspect found, with what a reload would do to it.
type Candidate struct {
	PID       int
	PPID      int
	Name      string // comm
	Argv0     string
	Exe       string // empty when /proc/PID/exe is unreadable
	UID       int    // real UID; -1 if unreadable
	StartTime time.Time
	// Catches is whether the process has a handler for the reload signal.
	Catches bool
	// Selected is whether the policy picks it for signalling.
	Selected bool
	// KillErr is the result of kill(pid, 0): whether pollreload may signal
	// it. A *PermissionError explains a refusal.
	KillErr error
}

// Inspect returns every process matching the names (or the one named by the
// PID file) without signalling anything, for `pollreload check`.
func (p *Process) Inspect() ([]Candidate, error) {
	var matches, selected []process
	if p.pidFile != "" {
		t, err := p.fromPIDFile()
		if err != nil {
			return nil, err
		}
		matches, selected = []process{t}, []process{t}
	} else {
		res, err := findByName(p.procDir, p.names, p.self)
		if err != nil {
			return nil, err
		}
		if len(res.matches) == 0 {
			return nil, noTargetError(p.names, p.procDir, res)
		}
		matches, selected = res.matches, selectTargets(res.matches, p.policy)
	}
	picked := make(map[int]bool, len(selected))
	for _, s := range selected {
		picked[s.PID] = true
	}
	out := make([]Candidate, 0, len(matches))
	for _, m := range matches {
		c := Candidate{
			PID: m.PID, PPID: m.PPID, Name: m.name(), Argv0: m.Argv0, Exe: m.Exe,
			UID: -1, StartTime: m.StartTime, Selected: picked[m.PID],
		}
		if st, err := readStatus(p.procDir, m.PID); err == nil {
			c.UID = st.UID
			c.Catches = st.catches(p.sig)
		}
		if err := unix.Kill(m.PID, 0); err != nil {
			c.KillErr = err
			if errors.Is(err, unix.EPERM) {
				c.KillErr = &PermissionError{PID: m.PID, Name: m.name(), Signal: p.sig, UID: os.Geteuid(), TargetUID: c.UID, Err: err}
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// startedAfter reports whether a process that started at start has surely
// read configuration that changed at changedAt. A zero changedAt (time not
// known) never counts: an extra signal is harmless, a missed one is not.
func startedAfter(start, changedAt time.Time) bool {
	return !changedAt.IsZero() && !start.IsZero() && start.After(changedAt.Add(startSlack))
}

// isGone reports whether a /proc read failed because the process exited.
func isGone(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH)
}
