package signaler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// This file is wrapper mode (`pollreload -- CMD ARGS`): pollreload starts the
// application as its own child, reloads it, forwards termination signals to
// it and reaps it.

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

	waitOnce sync.Once
	done     chan struct{} // closed once the child is reaped
	exitCode int
	waitErr  error
}

// StartChild starts name with args (looked up in PATH when it has no slash).
// The caller must call Wait to reap it.
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
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &Child{
		cmd: cmd, name: filepath.Base(name), sig: sig, force: opts.Force,
		procDir: procDir, log: log, done: make(chan struct{}),
	}
	// The child cannot have been reaped yet (only Wait reaps it), so its
	// /proc entry is there, if perhaps already a zombie.
	if st, err := readStat(procDir, cmd.Process.Pid); err == nil {
		c.startTicks = st.StartTicks
		if clock, err := readBootClock(procDir); err == nil {
			c.startTime = clock.startTime(st.StartTicks)
		}
	}
	log.Info("started child", "pid", cmd.Process.Pid, "path", cmd.Path)
	return c, nil
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

// Forward passes a signal (SIGTERM, SIGINT) on to the child. A child that
// has already exited needs nothing, so that is not an error.
func (c *Child) Forward(sig os.Signal) error {
	err := c.cmd.Process.Signal(sig)
	if err == nil || errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return fmt.Errorf("forward %s to child %s (pid %d): %w", sig, c.name, c.PID(), err)
}

// Wait waits for the child to exit, reaps it and returns its exit code, or
// 128+N if signal N killed it (as a shell reports it). err is set only when
// waiting itself failed. Wait may be called more than once and from several
// goroutines; all get the same result.
func (c *Child) Wait() (exitCode int, err error) {
	c.waitOnce.Do(func() {
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
			c.exitCode, c.waitErr = -1, fmt.Errorf("wait for child %s: %w", c.name, err)
		}
		close(c.done)
		c.log.Info("child exited", "pid", c.PID(), "code", c.exitCode)
	})
	<-c.done
	return c.exitCode, c.waitErr
}

// exited reports whether Wait has reaped the child.
func (c *Child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
