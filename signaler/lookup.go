package signaler

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// This file finds target processes by name in /proc and picks which of them
// a policy signals.

// commLen is the longest name the kernel keeps in comm (TASK_COMM_LEN - 1).
const commLen = 15

// Policy chooses which of the matching processes are signalled.
type Policy string

// The target policies accepted in RELOAD_TARGETS.
const (
	// PolicyRoots signals matches whose parent is not also a match: the
	// nginx master but not its workers, the gunicorn arbiter but not its
	// workers. It is the default.
	PolicyRoots Policy = "roots"
	// PolicyAll signals every match.
	PolicyAll Policy = "all"
	// PolicyOldest signals only the match that started first.
	PolicyOldest Policy = "oldest"
)

// ParsePolicy reads a policy name; the empty string means PolicyRoots.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(strings.ToLower(strings.TrimSpace(s))); p {
	case "":
		return PolicyRoots, nil
	case PolicyRoots, PolicyAll, PolicyOldest:
		return p, nil
	}
	return "", fmt.Errorf("invalid target policy %q: want roots, all or oldest", s)
}

// process is one candidate seen in /proc.
type process struct {
	PID        int
	PPID       int
	Comm       string
	Argv0      string
	Exe        string
	StartTicks uint64
	StartTime  time.Time
}

// name is what logs and errors call the process: comm, as ps shows it.
func (p process) name() string { return p.Comm }

// CheckName reports whether n can be used as a PROCESS_NAME. A name with a
// slash is a path and must be absolute: it is matched against argv[0] and the
// executable's full path, never against a base name, so a relative path would
// silently match nothing.
func CheckName(n string) error {
	if strings.Contains(n, "/") && !filepath.IsAbs(n) {
		return fmt.Errorf("process name %q holds a / but is not an absolute path: want a base name such as nginx, or an absolute path such as /usr/sbin/nginx", n)
	}
	return nil
}

// matchName reports whether p is one of names:
//   - a name with a slash is a path: it matches argv[0] or the executable's
//     full path (both cleaned), exactly;
//   - any other name matches argv[0]'s base name or the executable's base
//     name, and comm only when the name has at most 15 bytes: comm keeps just
//     the first 15, so myapplication-server and myapplication-sidecar share
//     comm "myapplication-s" and must be told apart by their full names.
//
// exe is called only when nothing cheaper matched: readlink is the costliest
// of the reads. A nil exe means the executable is not known.
func matchName(p process, names []string, exe func() string) bool {
	argv0 := p.Argv0
	if filepath.IsAbs(argv0) {
		argv0 = filepath.Clean(argv0)
	}
	for _, n := range names {
		switch {
		case n == "":
		case strings.Contains(n, "/"):
			if argv0 == n {
				return true
			}
		case argv0 != "" && filepath.Base(argv0) == n, len(n) <= commLen && p.Comm == n:
			return true
		}
	}
	if exe == nil {
		return false
	}
	path := exe()
	if path == "" {
		return false
	}
	for _, n := range names {
		switch {
		case n == "":
		case strings.Contains(n, "/"):
			if path == n {
				return true
			}
		case filepath.Base(path) == n:
			return true
		}
	}
	return false
}

// zombieMatch reports whether the zombie p may be one of names. A zombie
// has no command line and no executable left, only comm, so a longer name
// is compared on its first 15 bytes: this only explains an empty lookup,
// it never selects a target.
func zombieMatch(p process, names []string) bool {
	for _, n := range names {
		if strings.Contains(n, "/") {
			n = filepath.Base(n)
		}
		if n != "" && p.Comm == n[:min(len(n), commLen)] {
			return true
		}
	}
	return false
}

// scanResult is every process in /proc matching the names.
type scanResult struct {
	matches []process
	// pid1 is set when PID 1 matched: it is never signalled, and saying so
	// turns a puzzling "no target" into an actionable one.
	pid1 bool
	// zombies are processes of that name that exited and were not reaped:
	// never signalled, but named when nothing else matched.
	zombies []process
}

// findByName scans procDir for processes matching names. PID 1, self,
// zombies and kernel threads are never matches. Processes that vanish during
// the scan are skipped.
func findByName(procDir string, names []string, self int) (scanResult, error) {
	pids, err := listPIDs(procDir)
	if err != nil {
		return scanResult{}, err
	}
	clock, err := readBootClock(procDir)
	if err != nil {
		return scanResult{}, err
	}
	var res scanResult
	for _, pid := range pids {
		if pid == self {
			continue
		}
		st, err := readStat(procDir, pid)
		if err != nil {
			continue // exited since listing, or not a process directory
		}
		if st.Flags&pfKthread != 0 || st.State == 'X' {
			continue
		}
		if st.State == 'Z' {
			if z := (process{PID: pid, PPID: st.PPID, Comm: st.Comm}); zombieMatch(z, names) {
				res.zombies = append(res.zombies, z)
			}
			continue
		}
		argv0, emptyCmdline := readArgv0(procDir, pid)
		if emptyCmdline && st.PPID == 2 {
			continue // a kernel thread on a kernel that hides PF_KTHREAD
		}
		p := process{
			PID:        pid,
			PPID:       st.PPID,
			Comm:       st.Comm,
			Argv0:      argv0,
			StartTicks: st.StartTicks,
			StartTime:  clock.startTime(st.StartTicks),
		}
		exeRead := false
		exe := func() string {
			if !exeRead {
				p.Exe, exeRead = readExe(procDir, pid), true
			}
			return p.Exe
		}
		if !matchName(p, names, exe) {
			continue
		}
		exe() // for Inspect, which shows it
		if pid == 1 {
			res.pid1 = true
			continue
		}
		res.matches = append(res.matches, p)
	}
	return res, nil
}

// selectTargets returns the matches the policy signals, in PID order.
func selectTargets(matches []process, policy Policy) []process {
	var out []process
	switch policy {
	case PolicyAll:
		out = slices.Clone(matches)
	case PolicyOldest:
		if len(matches) > 0 {
			oldest := slices.MinFunc(matches, func(a, b process) int {
				return cmp.Or(cmp.Compare(a.StartTicks, b.StartTicks), cmp.Compare(a.PID, b.PID))
			})
			out = []process{oldest}
		}
	default: // PolicyRoots
		matched := make(map[int]bool, len(matches))
		for _, m := range matches {
			matched[m.PID] = true
		}
		for _, m := range matches {
			if !matched[m.PPID] {
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b process) int { return cmp.Compare(a.PID, b.PID) })
	return out
}

// noTargetError explains an empty lookup. How to fix it in a deployment
// (the variable, the pod spec) is the caller's to add: see NoTargetError.
func noTargetError(names []string, procDir string, res scanResult) error {
	e := &NoTargetError{Names: names, ProcDir: procDir, PID1: res.pid1}
	for i, z := range res.zombies {
		if i == 3 { // one line, however many there are
			e.Zombies = append(e.Zombies, fmt.Sprintf("%d more", len(res.zombies)-i))
			break
		}
		e.Zombies = append(e.Zombies, fmt.Sprintf("pid %d (%s, parent pid %d)", z.PID, z.Comm, z.PPID))
	}
	return e
}

// NoTargetError reports that no live process matched the names. It wraps
// ErrNoTarget. Its text says what was found; the main package adds the
// variable it came from and the pod-spec fix.
type NoTargetError struct {
	Names   []string
	ProcDir string
	// PID1 is set when only PID 1 matched, which is never signalled.
	PID1 bool
	// Zombies describes the zombies that matched when nothing else did.
	Zombies []string
}

func (e *NoTargetError) Error() string {
	quoted := strings.Join(e.Names, ",")
	switch {
	case e.PID1:
		return fmt.Sprintf("%v: %s matches only PID 1, which pollreload never signals", ErrNoTarget, quoted)
	case len(e.Zombies) > 0:
		return fmt.Sprintf("%v: %s matches only a zombie: %s has exited and waits for its parent to reap it, so there is nothing to signal; restart the app (a parent that never reaps its children needs an init such as pollreload -- CMD or tini)",
			ErrNoTarget, quoted, strings.Join(e.Zombies, ", "))
	}
	return fmt.Sprintf("%v: no process in %s is named %s (by comm, argv[0] or executable)", ErrNoTarget, e.ProcDir, quoted)
}

// Unwrap makes errors.Is(err, ErrNoTarget) hold.
func (e *NoTargetError) Unwrap() error { return ErrNoTarget }
