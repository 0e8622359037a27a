package signaler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// This file is wrapper mode (`pollreload -- CMD ARGS`): pollreload starts the
// application as its own child, reloads it, forwards signals to it and reaps
// it. terminal.go hands it the terminal; reap.go reaps adopted orphans.

// ChildOptions configures StartChild.
type ChildOptions struct {
	// Signal is the reload signal; zero means SIGHUP.
	Signal syscall.Signal
	// Force sends the reload signal even when the child has no handler.
	Force bool
	// Stdin, Stdout and Stderr default to pollreload's own, so the child
	// talks to the terminal or container log directly.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Env is the child's environment; nil means pollreload's.
	Env []string
	// ProcDir is where procfs is mounted; empty means /proc.
	ProcDir string
	// Logger receives delivery logs; nil discards them.
	Logger *slog.Logger
}

// Child is an application started by pollreload.
type Child struct {
	cmd        *exec.Cmd
	name       string
	sig        syscall.Signal
	force      bool
	procDir    string
	startTicks uint64
	startTime  time.Time
	log        *slog.Logger
	tty        int // pollreload's descriptor of the terminal handed to the child; -1: none

	done     chan struct{} // closed once the child is reaped
	exitCode int
	waitErr  error
}

// StartChild starts name with args (looked up in PATH when it has no slash)
// the way an init does:
//
//   - in a process group of its own, so that a signal the terminal sends to
//     its foreground group reaches the child once, not also through
//     pollreload; if pollreload holds the foreground of the terminal on the
//     child's stdin, stdout or stderr, the child's group gets it (as tini
//     does), so Ctrl-C and Ctrl-Z go to the application;
//   - with SIGKILL as its parent-death signal, so it does not outlive
//     pollreload.
//
// An error wraps exec.ErrNotFound when name is not in PATH, and the errno of
// execve otherwise (ENOENT, EACCES, ENOEXEC, ...). The child is reaped by
// pollreload as soon as it exits; Wait and Done report that.
func StartChild(name string, args []string, opts ChildOptions) (*Child, error) {
	sig, procDir, log, err := defaults(opts.Signal, opts.ProcDir, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	if cmd.Stdin == nil {
		cmd.Stdin = os.Stdin
	}
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	cmd.Env = opts.Env
	tty := foregroundTerminal(cmd.Stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Foreground: tty >= 0,
		Ctty:       tty,
		Pdeathsig:  syscall.SIGKILL,
	}
	c := &Child{
		cmd: cmd, name: filepath.Base(name), sig: sig, force: opts.Force,
		procDir: procDir, log: log, tty: tty, done: make(chan struct{}),
	}
	started := make(chan error, 1)
	go c.run(started)
	if err := <-started; err != nil {
		return nil, startError(name, err)
	}
	log.Info("started child", "pid", cmd.Process.Pid, "path", cmd.Path)
	return c, nil
}

// run starts the child, reports the start on started and then reaps it.
// The kernel sends the parent-death signal when the thread that forked the
// child exits, not the process (https://go.dev/issue/27505): a thread can
// end while pollreload runs, when a goroutine that locked it exits. So the
// fork happens on a thread locked to this goroutine, which lives until the
// child has been reaped.
func (c *Child) run(started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := c.cmd.Start(); err != nil {
		close(c.done)
		started <- err
		return
	}
	// The child cannot have been reaped yet (only this goroutine reaps it),
	// so its /proc entry is there, if perhaps already a zombie.
	if st, err := readStat(c.procDir, c.cmd.Process.Pid); err == nil {
		c.startTicks = st.StartTicks
		if clock, err := readBootClock(c.procDir); err == nil {
			c.startTime = clock.startTime(st.StartTicks)
		}
	}
	started <- nil

	err := c.cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		c.exitCode = 0
	case errors.As(err, &exit):
		c.exitCode = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			c.exitCode = 128 + int(ws.Signal())
		}
	default:
		c.exitCode, c.waitErr = -1, fmt.Errorf("wait for child %s (pid %d): %w", c.name, c.PID(), err)
	}
	close(c.done)
	c.log.Info("child exited", "pid", c.PID(), "code", c.exitCode)
}

// startError says in one line why name could not be started, keeping the
// cause for errors.Is: exec.ErrNotFound, or the errno of execve.
func startError(name string, err error) error {
	var execErr *exec.Error
	var pathErr *fs.PathError
	switch {
	case errors.As(err, &execErr):
		err = execErr.Err
	case errors.As(err, &pathErr):
		err = pathErr.Err
	}
	return fmt.Errorf("start %s: %w", name, err)
}

// PID returns the child's process ID.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// Reload sends the reload signal to the child, after the same safety check
// as Process: a child that has not installed its handler yet is not killed
// by it. The signal goes through the pidfd os/exec holds for the child, and
// as only Wait reaps it, the PID cannot name another process meanwhile.
func (c *Child) Reload(_ context.Context, changedAt time.Time) (Outcome, error) {
	target := Target{PID: c.PID(), Name: c.name, StartTicks: c.startTicks}
	if c.exited() {
		return Outcome{}, fmt.Errorf("%w: child %s (pid %d) has exited", ErrNoTarget, c.name, c.PID())
	}
	if startedAfter(c.startTime, changedAt) {
		return Outcome{UpToDate: []Target{target}}, nil
	}
	st, err := readStat(c.procDir, c.PID())
	switch {
	case err != nil && isGone(err), err == nil && (st.State == 'Z' || c.startTicks != 0 && st.StartTicks != c.startTicks):
		return Outcome{}, fmt.Errorf("%w: child %s (pid %d) has exited", ErrNoTarget, c.name, c.PID())
	case err != nil:
		return Outcome{}, fmt.Errorf("check child: %w", err)
	}
	if _, err := ready(c.procDir, c.PID(), c.name, c.sig, c.force, c.log); err != nil {
		if errors.Is(err, ErrNotCatching) {
			return Outcome{}, err
		}
		return Outcome{}, fmt.Errorf("check child: %w", err)
	}
	if err := c.cmd.Process.Signal(c.sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return Outcome{}, fmt.Errorf("%w: child %s (pid %d) has exited", ErrNoTarget, c.name, c.PID())
		}
		return Outcome{}, fmt.Errorf("send %s to child %s (pid %d): %w", signalName(c.sig), c.name, c.PID(), err)
	}
	c.log.Debug("signalled", "pid", c.PID(), "name", c.name, "signal", signalName(c.sig))
	return Outcome{Signalled: []Target{target}}, nil
}

// Forward passes a signal pollreload received on to the child. A child that
// has already exited needs nothing, so that is not an error.
func (c *Child) Forward(sig os.Signal) error {
	err := c.cmd.Process.Signal(sig)
	if err == nil || errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return fmt.Errorf("forward %s to child %s (pid %d): %w", sig, c.name, c.PID(), err)
}

// Wait waits until the child has exited and been reaped, and returns its
// exit code, or 128+N if signal N killed it (as a shell reports it). err is
// set only when waiting itself failed. Wait may be called more than once and
// from several goroutines; all get the same result.
func (c *Child) Wait() (exitCode int, err error) {
	<-c.done
	return c.exitCode, c.waitErr
}

// Done is closed once the child has exited and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// exited reports whether Wait has reaped the child.
func (c *Child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
