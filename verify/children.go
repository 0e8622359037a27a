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
// verification, which the caller names from the *ChildrenUnfitError's Kind
// that wraps it. At start and in `check` it is
// refused; for a target found later, a delivery it verifies counts
// unverified (errors.Is(err, signaler.ErrUnverified) holds), which is not
// retried: waiting would not give the children a verdict to show.
var ErrChildrenUnfit error = childrenUnfitError{}

type childrenUnfitError struct{}

func (childrenUnfitError) Error() string { return "the target's children say nothing about its reload" }

// Is makes a ChildrenVerifier's setup error count as unverified.
func (childrenUnfitError) Is(target error) bool { return target == signaler.ErrUnverified }

// UnfitKind says why a target's children cannot judge its reload.
type UnfitKind int

const (
	// NoChildren: it had no children before the signal.
	NoChildren UnfitKind = iota + 1
	// Sessions: its children are sessions a reload keeps, and it reloads
	// by re-executing itself in place (sshd).
	Sessions
	// Backends: its children are background processes and backends a
	// reload keeps (postgres).
	Backends
)

// ChildrenUnfitError is a target whose children say nothing about its
// reload. It wraps ErrChildrenUnfit.
type ChildrenUnfitError struct {
	PID    int
	Name   string
	Signal syscall.Signal
	Kind   UnfitKind
}

func (e *ChildrenUnfitError) Error() string {
	switch e.Kind {
	case Sessions:
		return fmt.Sprintf("verify children: pid %d (%s): %v: sshd's children are the sessions of connected users, which a reload keeps, and sshd reloads by re-executing itself in place", e.PID, e.Name, ErrChildrenUnfit)
	case Backends:
		return fmt.Sprintf("verify children: pid %d (%s): %v: postgres's children are its background processes and backends, which a reload keeps", e.PID, e.Name, ErrChildrenUnfit)
	}
	return fmt.Sprintf("verify children: pid %d (%s) had no children before %s: %v", e.PID, e.Name, signaler.SignalName(e.Signal), ErrChildrenUnfit)
}

// Unwrap makes errors.Is(err, ErrChildrenUnfit) hold.
func (e *ChildrenUnfitError) Unwrap() error { return ErrChildrenUnfit }

// notWorkers names the executables whose children are not workers a reload
// replaces.
var notWorkers = map[string]UnfitKind{"sshd": Sessions, "postgres": Backends, "postmaster": Backends}

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
	if kind, ok := notWorkers[executableName(procDir, pid)]; ok {
		return &ChildrenUnfitError{PID: pid, Name: name, Signal: sig, Kind: kind}
	}
	if kids == 0 {
		return &ChildrenUnfitError{PID: pid, Name: name, Signal: sig, Kind: NoChildren}
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
