package signaler

import (
	"fmt"
	"github.com/pollreload/pollreload/internal/logs"
	"log/slog"
	"syscall"
)

// This file decides whether sending the reload signal is safe: a process
// that has not installed a handler yet (nginx during start-up) would be
// killed or stopped by a signal meant to reload it.

// defaultAction returns what the kernel does with sig for a process that
// neither catches nor ignores it: "terminate", "stop", "continue" or
// "ignore". Only a handler reloads anything, so every one of these means
// the signal must not be counted as a delivered reload.
func defaultAction(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGCHLD, syscall.SIGURG, syscall.SIGWINCH:
		return "ignore"
	case syscall.SIGCONT:
		return "continue"
	case syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGSTOP:
		return "stop"
	}
	return "terminate"
}

// sigBit returns the mask bit of sig in SigCgt and SigIgn.
func sigBit(sig syscall.Signal) uint64 {
	if sig < 1 || sig > 64 {
		return 0
	}
	return 1 << (uint(sig) - 1)
}

// catches reports whether the process has a handler for sig.
func (st procStatus) catches(sig syscall.Signal) bool { return st.SigCgt&sigBit(sig) != 0 }

// checkCatches returns a *NotCatchingError unless the process has a handler
// for sig: without one the signal would terminate or stop it, or do nothing
// at all (SIGCHLD, SIGURG, SIGWINCH are ignored by default, SIGCONT only
// continues), and a reload that did nothing must not count as delivered.
func checkCatches(pid int, name string, st procStatus, sig syscall.Signal) error {
	if st.catches(sig) {
		return nil
	}
	e := &NotCatchingError{PID: pid, Name: name, Signal: sig, Action: defaultAction(sig)}
	if st.SigIgn&sigBit(sig) != 0 {
		e.Ignored, e.Action = true, ""
	}
	return e
}

// ready reads pid's status and applies the safety checks: it returns the
// target's UID (-1 if unreadable) and a *NotCatchingError when the signal
// would harm it or do nothing, or a *NotReloadingError when its program
// does not reload on a signal (mysqld), unless force is set, which only
// logs.
func ready(procDir string, pid int, name string, sig syscall.Signal, force bool, log *slog.Logger) (uid int, err error) {
	st, err := readStatus(procDir, pid)
	if err != nil {
		return -1, err
	}
	err = checkCatches(pid, name, st, sig)
	if err == nil {
		err = checkReloads(procDir, pid, name, sig)
	}
	if err != nil {
		if !force {
			return st.UID, err
		}
		log.Warn("sending the reload signal anyway, as forced", "pid", pid, "signal", signalName(sig), "err", err)
	}
	return st.UID, nil
}

// defaults fills in what both reloaders of processes need: SIGHUP when no
// signal is given (refusing ones that cannot reload), /proc, and a discarding
// logger.
func defaults(sig syscall.Signal, procDir string, log *slog.Logger) (syscall.Signal, string, *slog.Logger, error) {
	if sig == 0 {
		sig = syscall.SIGHUP
	}
	if err := checkSignal(sig); err != nil {
		return 0, "", nil, fmt.Errorf("invalid signal %d: %w", int(sig), err)
	}
	if procDir == "" {
		procDir = "/proc"
	}
	return sig, procDir, logs.OrDiscard(log), nil
}
