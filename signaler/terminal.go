package signaler

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file is wrapper mode at a terminal. The child runs in a process group
// of its own; when pollreload holds the terminal's foreground, the child's
// group gets it, so the terminal's Ctrl-C reaches the child once (not also
// pollreload, which would forward it again) and Ctrl-Z stops the child.
// pollreload then follows the child's job control: it stops itself when the
// child stops, so that the shell takes the terminal back, and gives the
// terminal to the child again when the shell continues it.

// foregroundTerminal returns pollreload's descriptor of stdin when it is a
// terminal whose foreground process group is pollreload's, or -1. Only
// stdin counts, as with tini: a shell without job control (a script) runs
// `pollreload -- app &` in the script's own process group, with stdin from
// /dev/null, and taking the terminal on stdout would steal the foreground
// from the script. A terminal in whose background pollreload
// runs is not taken either.
func foregroundTerminal(stdin any) int {
	file, ok := stdin.(*os.File)
	if !ok {
		return -1
	}
	fd := int(file.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return -1
	}
	if pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err != nil || pgrp != unix.Getpgrp() {
		return -1
	}
	return fd
}

// HasTerminal reports whether the child was given the terminal's foreground.
func (c *Child) HasTerminal() bool { return c.tty >= 0 }

// Stopped reports whether the child is stopped by a signal, and which, as
// the kernel reports a stop to the parent. It consumes that report, which
// os/exec never asks for; it never reaps the child.
func (c *Child) Stopped() (syscall.Signal, bool) {
	if c.exited() {
		return 0, false
	}
	info, err := waitid(unix.P_PID, c.PID(), unix.WSTOPPED|unix.WNOHANG)
	if err != nil || info.code != cldStopped {
		return 0, false
	}
	return syscall.Signal(info.status), true
}

// TakeTerminal gives the terminal's foreground back to the child after the
// shell gave it to pollreload (`fg` after Ctrl-Z). It does nothing when the
// child never had the terminal or pollreload does not hold it now.
func (c *Child) TakeTerminal() error {
	if c.tty < 0 || c.exited() {
		return nil
	}
	pgrp, err := unix.IoctlGetInt(c.tty, unix.TIOCGPGRP)
	if err != nil || pgrp != unix.Getpgrp() {
		return nil
	}
	if err := unix.IoctlSetPointerInt(c.tty, unix.TIOCSPGRP, c.PID()); err != nil {
		return fmt.Errorf("give the terminal to child %s (pid %d): %w", c.name, c.PID(), err)
	}
	return nil
}
