package signaler

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file delivers a signal to a process found earlier, and only to that
// process: the PID may have been reused since lookup.

// deliverSignal sends sig to pid if the process there still has the start
// time seen at lookup, after ready (if not nil) approves it. Through a pidfd
// the check is exact: once the pidfd is open it names one process forever, so
// a start time read after opening it proves the pidfd is the process we
// looked up, and ready's own /proc reads are about that process too. Where
// pidfd_open is missing (ENOSYS) or blocked by seccomp (EPERM), kill(2)
// follows the same checks; its window between check and kill is tiny but not
// zero.
//
// It returns the raw EPERM for the caller to explain, and errors wrapping
// ErrNoTarget when the process is gone or was replaced.
func deliverSignal(procDir string, pid int, startTicks uint64, sig syscall.Signal, ready func() error) error {
	return deliverSignalWith(unix.PidfdOpen, procDir, pid, startTicks, sig, ready)
}

// deliverSignalWith is deliverSignal with pidfd_open supplied, so tests can
// take the kill(2) path a kernel without pidfd (or a seccomp profile that
// blocks it) would take.
func deliverSignalWith(pidfdOpen func(pid, flags int) (int, error), procDir string, pid int, startTicks uint64, sig syscall.Signal, ready func() error) error {
	check := func() error {
		if err := checkSameProcess(procDir, pid, startTicks); err != nil {
			return err
		}
		if ready != nil {
			return ready()
		}
		return nil
	}
	fd, err := pidfdOpen(pid, 0)
	switch {
	case err == nil:
		defer unix.Close(fd)
		if err := check(); err != nil {
			return err
		}
		err = unix.PidfdSendSignal(fd, sig, nil, 0)
	case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
		if err := check(); err != nil {
			return err
		}
		err = unix.Kill(pid, sig)
	case errors.Is(err, unix.ESRCH):
		// handled below with the send errors
	default:
		return fmt.Errorf("open pidfd for pid %d: %w", pid, err)
	}
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("%w: pid %d exited before %s reached it", ErrNoTarget, pid, signalName(sig))
	}
	return err
}

// checkSameProcess compares the start time of pid now with the one seen at
// lookup.
func checkSameProcess(procDir string, pid int, startTicks uint64) error {
	st, err := readStat(procDir, pid)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH):
		return fmt.Errorf("%w: pid %d exited after lookup", ErrNoTarget, pid)
	case err != nil:
		return fmt.Errorf("recheck pid %d: %w", pid, err)
	case st.StartTicks != startTicks:
		return fmt.Errorf("%w: pid %d now belongs to another process (%s), so it was not signalled", ErrNoTarget, pid, st.Comm)
	case st.State == 'Z' || st.State == 'X':
		return fmt.Errorf("%w: pid %d exited after lookup", ErrNoTarget, pid)
	}
	return nil
}
