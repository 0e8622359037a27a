package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/pollreload/pollreload/signaler"
)

// This file holds the rules ChildrenVerifier judges by: when the old
// workers count as replaced, and which targets' children are not workers
// at all.

// ErrChildrenUnfit is wrapped by the error of a ChildrenVerifier whose
// target cannot be judged by its children: it has none, or they are not
// workers a reload replaces. It is a setup error: the fix is another
// RELOAD_VERIFY, which the error names. At start and in `check` it is
// refused; for a target found later, a delivery it verifies counts
// unverified (errors.Is(err, signaler.ErrUnverified) holds), which is not
// retried: waiting would not give the children a verdict to show.
var ErrChildrenUnfit error = childrenUnfitError{}

type childrenUnfitError struct{}

func (childrenUnfitError) Error() string { return "the target's children say nothing about its reload" }

// Is makes a ChildrenVerifier's setup error count as unverified.
func (childrenUnfitError) Is(target error) bool { return target == signaler.ErrUnverified }

// notWorkers names the executables whose children are not workers a reload
// replaces, with what to use instead.
var notWorkers = map[string]string{
	"sshd":       "sshd's children are the sessions of connected users, which a reload keeps, and sshd reloads by re-executing itself in place: use RELOAD_VERIFY=exec, and RELOAD_CHECK_COMMAND='sshd -t -f CONFIG' so a bad config never reaches it",
	"postgres":   "postgres's children are its background processes and backends, which a reload keeps: judge it by pg_conf_load_time() and pg_file_settings (the postgresql source), not by RELOAD_VERIFY=children",
	"postmaster": "postgres's children are its background processes and backends, which a reload keeps: judge it by pg_conf_load_time() and pg_file_settings (the postgresql source), not by RELOAD_VERIFY=children",
}

// ChildrenUnfit returns an error wrapping ErrChildrenUnfit when process pid
// cannot be judged by its children: its executable is one whose children
// are not workers (sshd, postgres), or it has no children to see replaced.
// pollreload calls it at start and in `check`, for the targets it finds.
func ChildrenUnfit(procDir string, pid int, name string, sig syscall.Signal) error {
	c := NewChildrenVerifier(ChildrenOptions{ProcDir: procDir})
	kids, err := c.Children(pid)
	if err != nil {
		return nil // not for this check to say; the verifier will
	}
	return childrenUnfit(procDir, pid, name, len(kids), sig)
}

func childrenUnfit(procDir string, pid int, name string, kids int, sig syscall.Signal) error {
	if procDir == "" {
		procDir = "/proc"
	}
	if why, ok := notWorkers[executableName(procDir, pid)]; ok {
		return fmt.Errorf("verify children: pid %d (%s): %w: %s", pid, name, ErrChildrenUnfit, why)
	}
	if kids == 0 {
		return fmt.Errorf("verify children: pid %d (%s) had no children before %s: %w: RELOAD_VERIFY=children is for master/worker servers such as nginx, haproxy -W or gunicorn; for a server that re-executes itself (sshd, uwsgi) use RELOAD_VERIFY=exec, otherwise leave RELOAD_VERIFY empty",
			pid, name, signaler.SignalName(sig), ErrChildrenUnfit)
	}
	return nil
}

// replaced returns the children in now that were not in old, sorted, when
// they make a new generation of workers: at least as many as the old
// children, or any once none of the old ones is left (a generation
// smaller than the old). Otherwise it returns nil: no new child, or a
// helper beside workers that still run. A rejection keeps every old
// worker, so only a helper living beside them is new then, and it is
// fewer than the old children.
func replaced(old, now []procEntry) []procEntry {
	var fresh []procEntry
	for _, e := range now {
		if !slices.Contains(old, e) {
			fresh = append(fresh, e)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	if len(fresh) >= len(old) || !anyStillRuns(old, now) {
		return fresh
	}
	return nil
}

// anyStillRuns reports whether one of the old children is among now.
func anyStillRuns(old, now []procEntry) bool {
	for _, e := range old {
		if slices.Contains(now, e) {
			return true
		}
	}
	return false
}

// executableName returns the base name of pid's executable, or its comm
// when the executable cannot be read (another user's process), or "".
func executableName(procDir string, pid int) string {
	dir := filepath.Join(procDir, strconv.Itoa(pid))
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		return filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}
