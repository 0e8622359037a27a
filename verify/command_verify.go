package verify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// This file holds CommandVerifier (RELOAD_VERIFY_COMMAND): a command the
// user gives asks the application for its verdict, for an application
// whose verdict pollreload cannot read itself (a client tool, a script).
// It runs through the check command's runner (Command), with the same
// word splitting and no shell unless asked.

// CommandVerifierOptions configures a CommandVerifier.
type CommandVerifierOptions struct {
	// Command is the command to run; its own timeout bounds one run.
	Command *Command
	// Timeout bounds the whole wait for a verdict after the delivery
	// (RELOAD_TIMEOUT); zero means 5s.
	Timeout time.Duration
	// Interval is the pause between two runs; zero means 200ms.
	Interval time.Duration
}

// CommandVerifier runs the command once before the delivery (its output is
// kept, for the log and the rejection) and after it, again and again until
// the timeout: exit 0 is accepted, exit 1 rejected (the output is the
// reason, bounded and redacted), anything else "not yet" (another status,
// a command that cannot start or ran past its own timeout).
type CommandVerifier struct {
	opts CommandVerifierOptions

	mu     sync.Mutex
	before Run // the run before the delivery
	ran    bool
}

// NewCommandVerifier returns a CommandVerifier; it runs nothing.
func NewCommandVerifier(opts CommandVerifierOptions) (*CommandVerifier, error) {
	if opts.Command == nil {
		return nil, errors.New("verify command: no command")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Interval <= 0 {
		opts.Interval = 200 * time.Millisecond
	}
	return &CommandVerifier{opts: opts}, nil
}

// Command returns the command it runs.
func (c *CommandVerifier) Command() *Command { return c.opts.Command }

// Before runs the command once and keeps what it said, before the signal
// changes anything. The run is bounded by the command's own timeout.
func (c *CommandVerifier) Before(ctx context.Context) {
	r := c.opts.Command.Run(ctx)
	c.mu.Lock()
	c.before, c.ran = r, true
	c.mu.Unlock()
}

// BeforeRun returns the run before the last delivery, and whether there was
// one: for the log and `check`.
func (c *CommandVerifier) BeforeRun() (Run, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.before, c.ran
}

// After runs the command until it says 0 or 1, or the timeout passes. A
// call after an unknown verdict runs it at least once more.
func (c *CommandVerifier) After(ctx context.Context, d Delivery) error {
	cmd := c.opts.Command
	deadline := d.At.Add(c.opts.Timeout)
	if now := time.Now(); deadline.Before(now) {
		deadline = now
	}
	var last Run
	for {
		rctx, cancel := context.WithDeadline(ctx, deadline.Add(cmd.Timeout()))
		last = cmd.Run(rctx)
		cancel()
		switch {
		case last.Err == nil && last.ExitCode == 0:
			return nil
		case last.Err == nil && last.ExitCode == 1:
			answer := "exit status 1"
			if lines := last.Lines(); lines != "" {
				answer += ": " + lines
			}
			if b, ok := c.BeforeRun(); ok && b.Err == nil {
				answer += fmt.Sprintf(" (before the delivery: exit status %d", b.ExitCode)
				if lines := b.Lines(); lines != "" {
					answer += ": " + lines
				}
				answer += ")"
			}
			return &signaler.RejectedError{Target: fmt.Sprintf("%s %q", cmd.name, cmd.String()), Answer: answer}
		case ctx.Err() != nil:
			return ctx.Err()
		}
		next := time.Now().Add(c.opts.Interval)
		if next.After(deadline) {
			break
		}
		if err := sleepUntil(ctx, next); err != nil {
			return err
		}
	}
	what := fmt.Sprintf("exit status %d", last.ExitCode)
	if last.Err != nil {
		what = last.Err.Error()
	}
	if lines := last.Lines(); lines != "" {
		what += "; it printed: " + lines
	}
	return fmt.Errorf("verify command: %s %q gave no verdict (0 accepted, 1 rejected) within %s of the delivery: last %s",
		cmd.name, cmd.String(), c.opts.Timeout, what)
}

// Describe says what the check does.
func (c *CommandVerifier) Describe() string {
	return fmt.Sprintf("%s %q before the delivery and after it until %s: exit 0 accepted, 1 rejected, else not yet",
		c.opts.Command.name, c.opts.Command.String(), c.opts.Timeout)
}
