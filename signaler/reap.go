package signaler

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file reaps the processes pollreload adopts in wrapper mode: as PID 1
// of a container, or as a child subreaper, every orphan among the child's
// descendants becomes pollreload's child, and stays a zombie until
// pollreload waits for it.
//
// Waiting for any child (waitpid(-1), as tini does) would race with os/exec,
// which waits for the main child by its pidfd or PID and must get its exit
// status. So ReapOrphans first peeks (WNOWAIT) at which child has exited and
// reaps it by PID only when it is not the main child. When the peek names
// the main child, the wrapper is about to exit anyway.

// BecomeSubreaper makes pollreload the child subreaper of its descendants
// (PR_SET_CHILD_SUBREAPER), so that orphans are reparented to it rather
// than to the system's init. As PID 1 that is already so.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	return nil
}

// ReapOrphans reaps every exited child of pollreload except main, and
// returns their PIDs. It never blocks and never waits for main.
func ReapOrphans(main int) ([]int, error) {
	var reaped []int
	for {
		info, err := waitid(unix.P_ALL, 0, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT)
		switch {
		case errors.Is(err, unix.ECHILD):
			return reaped, nil
		case err != nil:
			return reaped, fmt.Errorf("wait for orphans: %w", err)
		case info.pid == 0 || int(info.pid) == main:
			return reaped, nil
		}
		if _, err := waitid(unix.P_PID, int(info.pid), unix.WEXITED|unix.WNOHANG); err != nil && !errors.Is(err, unix.ECHILD) {
			return reaped, fmt.Errorf("reap pid %d: %w", info.pid, err)
		}
		reaped = append(reaped, int(info.pid))
	}
}

// Values of siginfo's si_code for SIGCHLD.
const (
	cldStopped = 5 // CLD_STOPPED
)

// childInfo is what waitid(2) reports about a child.
type childInfo struct {
	pid    int32
	code   int32
	status int32 // exit code, or the signal that killed or stopped it
}

// waitid calls waitid(2) and decodes the SIGCHLD fields of its siginfo,
// which x/sys/unix.Siginfo leaves opaque. They follow si_signo, si_errno and
// si_code, aligned to a pointer: si_pid, si_uid, si_status.
func waitid(idType, id, options int) (childInfo, error) {
	var raw [128]byte // sizeof(siginfo_t)
	for {
		_, _, errno := syscall.Syscall6(unix.SYS_WAITID, uintptr(idType), uintptr(id), uintptr(unsafe.Pointer(&raw)), uintptr(options), 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return childInfo{}, errno
		}
		break
	}
	off := 3 * 4
	if unsafe.Sizeof(uintptr(0)) == 8 {
		off = 4 * 4
	}
	i32 := func(at int) int32 { return *(*int32)(unsafe.Pointer(&raw[at])) }
	return childInfo{pid: i32(off), code: i32(8), status: i32(off + 8)}, nil
}
