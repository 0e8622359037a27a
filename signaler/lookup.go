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

// matchName reports whether one of names is the process's comm (compared on
// the first 15 bytes, where the kernel cuts it), argv[0]'s base name or, when
// exe is not nil, the base name of the executable it returns. exe is called
// only when nothing cheaper matched: readlink is the costliest of the reads.
func matchName(p process, names []string, exe func() string) bool {
	for _, n := range names {
		comm := n
		if len(comm) > commLen {
			comm = comm[:commLen]
		}
		if n != "" && (p.Comm == comm || p.Argv0 != "" && filepath.Base(p.Argv0) == n) {
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
		if n != "" && filepath.Base(path) == n {
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
		if st.State == 'Z' || st.State == 'X' || st.Flags&pfKthread != 0 {
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

// noTargetError explains an empty lookup and how to fix it.
func noTargetError(names []string, procDir string, pid1 bool) error {
	quoted := strings.Join(names, ",")
	if pid1 {
		return fmt.Errorf("%w: PROCESS_NAME=%s matches only PID 1, which pollreload never signals; run the app under pollreload's wrapper mode (pollreload -- CMD) or in its own container with shareProcessNamespace: true in the pod spec", ErrNoTarget, quoted)
	}
	return fmt.Errorf("%w: no process in %s is named PROCESS_NAME=%s (by comm, argv[0] or executable); if the app runs in another container of the pod, set shareProcessNamespace: true in the pod spec", ErrNoTarget, procDir, quoted)
}
