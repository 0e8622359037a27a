package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-shellwords"

	"github.com/pollreload/pollreload/signaler"
)

// This file is the check before the delivery (RELOAD_CHECK_COMMAND): a
// command, such as `nginx -t -c /etc/nginx/nginx.conf`, that tests the new
// configuration before any target is signalled or called. A profile of a
// known application builds the same Command with its own default.

// DefaultCheckTimeout is RELOAD_CHECK_TIMEOUT's default. A check command
// parses files and exits (nginx -t takes milliseconds); the slowest common
// ones, gunicorn --check-config and apache2ctl -t with many modules, import
// or load code for a few seconds on a loaded node. 30s leaves them room
// ten times over, and a hung command is still found, killed and reported
// within one minute.
const DefaultCheckTimeout = 30 * time.Second

// maxCheckOutput bounds the output kept of one run: the first lines say
// what is wrong, and a command that floods must not fill pollreload's
// memory.
const maxCheckOutput = 64 << 10

// checkLines is how many lines of the output a rejection quotes.
const checkLines = 10

// ErrNoShell is wrapped by NewCommand's error when a shell is asked for and
// /bin/sh does not exist (a distroless image).
var ErrNoShell = errors.New("/bin/sh does not exist")

// CommandOptions configures a Command.
type CommandOptions struct {
	// Line is the command line (RELOAD_CHECK_COMMAND). Without Shell it is
	// split into words as described at SplitCommand and run directly.
	Line string
	// Shell runs Line with /bin/sh -c instead (RELOAD_CHECK_SHELL).
	Shell bool
	// Timeout bounds one run (RELOAD_CHECK_TIMEOUT); zero means
	// DefaultCheckTimeout. At the timeout the command's whole process
	// group is killed.
	Timeout time.Duration
	// Env is the command's environment; nil means an empty one.
	Env []string
	// Name is what logs and errors call the command's source, such as
	// "RELOAD_CHECK_COMMAND" or "the nginx profile"; empty means "check
	// command".
	Name string
}

// Command is a check run before each delivery of new content: exit 0
// means deliver, another exit status means the application would refuse
// the content, and a command that cannot start or runs past its timeout
// gives no verdict. It implements Precheck.
type Command struct {
	argv    []string
	shell   bool
	timeout time.Duration
	env     []string
	name    string
	shown   string // the command line with URL secrets masked
}

// Precheck tests new content before any delivery of it. Check returns nil
// when the content may be delivered; an error wrapping
// signaler.ErrRejected (a *signaler.RejectedError) when it must not be (it
// is not delivered, nor checked again, until the content changes); and any
// other error, wrapping signaler.ErrCheckFailed, when there is no verdict
// (retried with backoff, nothing delivered meanwhile).
type Precheck interface {
	Check(ctx context.Context) error
}

var _ Precheck = (*Command)(nil)

// SplitCommand splits a command line into words without a shell: words
// are separated by blanks (space, tab, newline); 'single quotes' keep
// everything literally; "double quotes" keep blanks; a backslash outside
// single quotes keeps the next character literally. Nothing is expanded:
// a $ or ` outside single quotes, and the shell operators ; & | < > ( ),
// are refused with a *ShellSyntaxError: the caller says how to ask for a
// shell.
func SplitCommand(line string) ([]string, error) {
	if err := refuseShellSyntax(line); err != nil {
		return nil, err
	}
	p := shellwords.NewParser()
	words, err := p.Parse(line)
	switch {
	case err != nil:
		return nil, fmt.Errorf("cannot split it into words (%v): check the quotes", err)
	case p.Position >= 0:
		return nil, &ShellSyntaxError{Operator: true}
	case len(words) == 0:
		return nil, errors.New("it is empty")
	}
	return words, nil
}

// refuseShellSyntax refuses what only a shell would expand: $ and `
// outside single quotes, and ( ) outside quotes. The word splitter keeps
// them literally, which would run a different command than the user wrote.
func refuseShellSyntax(line string) error {
	var single, double, escaped bool
	for _, r := range line {
		switch {
		case escaped:
			escaped = false
		case single:
			single = r != '\''
		case r == '\\':
			escaped = true
		case r == '\'' && !double:
			single = true
		case r == '"':
			double = !double
		case r == '$' || r == '`':
			return &ShellSyntaxError{Char: r, Expands: true}
		case !double && (r == '(' || r == ')'):
			return &ShellSyntaxError{Char: r}
		}
	}
	return nil
}

// ShellSyntaxError is a command line that holds what only a shell
// understands, refused without CommandOptions.Shell.
type ShellSyntaxError struct {
	// Operator is set for one of ; & | < >; otherwise Char is the
	// character, and Expands is set when a shell would expand it ($, `)
	// rather than group with it (( )).
	Operator bool
	Char     rune
	Expands  bool
}

func (e *ShellSyntaxError) Error() string {
	switch {
	case e.Operator:
		return "it holds a shell operator (; & | < >), which runs only in a shell"
	case e.Expands:
		return fmt.Sprintf("it holds %q, which only a shell expands (no variables or command substitution without one)", e.Char)
	}
	return fmt.Sprintf("it holds %q, which only a shell understands", e.Char)
}

// TimeoutError is a command that ran past CommandOptions.Timeout and was
// killed with its process group.
type TimeoutError struct {
	// Name is the command's source, as CommandOptions.Name.
	Name    string
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("ran past its timeout of %s and was killed with its process group", e.Timeout)
}

// NewCommand checks the options and returns the Command; it runs nothing.
// Its errors describe the value only ("it holds ..."); the caller names
// the variable.
func NewCommand(opts CommandOptions) (*Command, error) {
	c := &Command{shell: opts.Shell, timeout: opts.Timeout, env: opts.Env, name: opts.Name}
	if c.timeout <= 0 {
		c.timeout = DefaultCheckTimeout
	}
	if c.name == "" {
		c.name = "check command"
	}
	if c.env == nil {
		c.env = []string{}
	}
	c.env = withoutBytecode(c.env)
	if strings.TrimSpace(opts.Line) == "" {
		return nil, errors.New("it is empty")
	}
	if c.shell {
		if _, err := os.Stat("/bin/sh"); err != nil {
			return nil, fmt.Errorf("a shell is asked for, but %w (%v)", ErrNoShell, err)
		}
		c.argv = []string{"/bin/sh", "-c", opts.Line}
	} else {
		argv, err := SplitCommand(opts.Line)
		if err != nil {
			return nil, err
		}
		c.argv = argv
	}
	c.shown = signaler.Excerpt([]byte(opts.Line), nil)
	return c, nil
}

// String returns the command line as shown in logs and errors: on one
// line, bounded, URLs without their credentials and query values.
func (c *Command) String() string { return c.shown }

// Timeout returns the bound of one run.
func (c *Command) Timeout() time.Duration { return c.timeout }

// Shell reports whether the command runs with /bin/sh -c.
func (c *Command) Shell() bool { return c.shell }

// Argv returns the words the command runs as (with /bin/sh -c first when
// it runs in a shell). The caller must not modify it.
func (c *Command) Argv() []string { return c.argv }

// Run is what one run of the command came to.
type Run struct {
	// ExitCode is the exit status; -1 when the command did not start, ran
	// past the timeout or was ended by a signal.
	ExitCode int
	// Output is the start of what it printed (stdout and stderr
	// together), at most 64 KiB, unredacted: show it through Excerpt.
	Output []byte
	// Err is set when there is no verdict: the command could not start,
	// ran past its timeout (TimedOut), or ctx ended.
	Err      error
	TimedOut bool
	Took     time.Duration
}

// Lines returns the first lines of the output on one line, separated by
// " | ", with URL credentials and query values masked and control
// characters removed: for logs, errors and check.
func (r Run) Lines() string { return strings.Join(r.FirstLines(), " | ") }

// FirstLines returns the first ten non-empty lines of the output, each made
// safe as Lines describes, and "..." when more followed.
func (r Run) FirstLines() []string {
	var out []string
	for line := range strings.SplitSeq(string(r.Output), "\n") {
		s := signaler.Excerpt([]byte(line), nil)
		if s == "" {
			continue
		}
		if len(out) == checkLines {
			return append(out, "...")
		}
		out = append(out, s)
	}
	return out
}

// boundedBuffer keeps the first max bytes written to it and discards the
// rest, so a flooding command keeps running to its exit instead of
// blocking on a full pipe.
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Run runs the command once, in a process group of its own, with the
// timeout. The whole group is killed at the timeout, and after the command
// exits, so that nothing it started outlives it.
func (c *Command) Run(ctx context.Context) Run {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	out := &boundedBuffer{max: maxCheckOutput}
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that keeps the output pipe open must not keep Run
	// waiting once the command is gone.
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Start()
	if err != nil {
		return Run{ExitCode: -1, Err: startError(c.argv[0], err), Took: time.Since(start)}
	}
	werr := cmd.Wait()
	// Whatever the command left behind in its group goes with it.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	r := Run{ExitCode: cmd.ProcessState.ExitCode(), Took: time.Since(start)}
	out.mu.Lock()
	r.Output = bytes.Clone(out.buf.Bytes())
	out.mu.Unlock()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		r.ExitCode, r.TimedOut = -1, true
		r.Err = &TimeoutError{Name: c.name, Timeout: c.timeout}
	case ctx.Err() != nil:
		r.ExitCode, r.Err = -1, ctx.Err()
	case r.ExitCode < 0:
		r.Err = fmt.Errorf("ended by a signal: %v", werr)
	}
	return r
}

// startError says why the command did not start, without the command
// line (which os/exec would repeat).
func startError(name string, err error) error {
	var perr *os.PathError
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return fmt.Errorf("cannot start %s: not found in PATH", filepath.Base(name))
	case errors.As(err, &perr):
		return fmt.Errorf("cannot start %s: %v", name, perr.Err)
	}
	return fmt.Errorf("cannot start %s: %v", filepath.Base(name), err)
}

// CheckError means the check command gave no verdict: it could not start,
// ran past its timeout or was killed. It wraps signaler.ErrCheckFailed,
// whose result is "check_error": retried with backoff, never a delivery
// and never a rejection.
type CheckError struct {
	// Name is the command's source (RELOAD_CHECK_COMMAND, a profile).
	Name string
	// Command is the command line as String shows it.
	Command string
	Err     error
	// Output is the start of what it printed, as Run.Lines shows it.
	Output string
}

// Error names the command, what went wrong and what it printed.
func (e *CheckError) Error() string {
	s := fmt.Sprintf("%s %q gave no verdict: %v", e.Name, e.Command, e.Err)
	if e.Output != "" {
		s += "; it printed: " + e.Output
	}
	return s + "; nothing is delivered until it does"
}

// Is makes errors.Is(err, signaler.ErrCheckFailed) hold.
func (e *CheckError) Is(target error) bool { return target == signaler.ErrCheckFailed }

// Unwrap returns the cause.
func (e *CheckError) Unwrap() error { return e.Err }

// Check runs the command once and turns the run into the verdict Precheck
// describes: nil for exit 0, a *signaler.RejectedError quoting the first
// lines of the output for another exit status, a *CheckError otherwise.
func (c *Command) Check(ctx context.Context) error {
	r := c.Run(ctx)
	return c.Verdict(r)
}

// Verdict turns a run into Check's error.
func (c *Command) Verdict(r Run) error {
	switch {
	case r.Err != nil:
		return &CheckError{Name: c.name, Command: c.shown, Err: r.Err, Output: r.Lines()}
	case r.ExitCode == 0:
		return nil
	}
	answer := fmt.Sprintf("exit status %d", r.ExitCode)
	if lines := r.Lines(); lines != "" {
		answer += ": " + lines
	}
	return &signaler.RejectedError{Target: fmt.Sprintf("%s %q", c.name, c.shown), Answer: answer}
}

// Describe says what the check does.
func (c *Command) Describe() string {
	how := "without a shell"
	if c.shell {
		how = "with /bin/sh -c"
	}
	return fmt.Sprintf("%s %q, run %s before every delivery, within %s: exit 0 delivers, another status rejects", c.name, c.shown, how, c.timeout)
}

// withoutBytecode adds PYTHONDONTWRITEBYTECODE=1 to env unless it is set: a
// check must not write into the tree it checks, and Python writes a
// __pycache__ beside a configuration it loads (gunicorn --check-config
// does, next to gunicorn.conf.py), which the next scan would see as a new
// change to check and deliver.
func withoutBytecode(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "PYTHONDONTWRITEBYTECODE=") {
			return env
		}
	}
	return append(slices.Clip(env), "PYTHONDONTWRITEBYTECODE=1")
}
