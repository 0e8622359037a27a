package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before it kills the whole
// process group.
const stopGrace = 10 * time.Second

// maxOutput caps the output kept per process, so that a chatty process in a
// long soak cannot eat the machine's memory; the tail is what explains a
// failure, so the head is dropped.
const maxOutput = 8 << 20

// Process is a child process started by a test, in its own process group so
// that everything it forks (nginx workers, sshfs's ssh) goes with it.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	// Grace is how long Stop waits after SIGTERM before it kills the
	// process group; 0 means 10 seconds.
	Grace time.Duration

	out  *tailBuffer
	done chan struct{}

	mu      sync.Mutex
	waitErr error
}

// Spawn starts cmd with stdout and stderr captured, in a new process group.
// Its cleanup stops the process (SIGTERM, then SIGKILL to the whole group)
// and, when the test failed, logs everything the process printed.
func Spawn(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Name: name, Cmd: cmd, out: &tailBuffer{max: maxOutput}, done: make(chan struct{})}
	// A writer the caller set (a log file the test reads) gets the output
	// too.
	cmd.Stdout = teeTo(p.out, cmd.Stdout)
	cmd.Stderr = teeTo(p.out, cmd.Stderr)
	// Pdeathsig: if the test binary dies without running its cleanups (a
	// -timeout panic), its direct children die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	note("pgids", strconv.Itoa(cmd.Process.Pid))
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("output of %s (pid %d):\n%s", p.Name, p.PID(), p.Output())
		}
	})
	return p
}

func teeTo(out *tailBuffer, also io.Writer) io.Writer {
	if also == nil {
		return out
	}
	return io.MultiWriter(out, also)
}

// PID returns the process ID.
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Output returns what the process printed so far (stdout and stderr
// interleaved, possibly without its head).
func (p *Process) Output() string { return p.out.String() }

func (p *Process) grace() time.Duration {
	if p.Grace > 0 {
		return p.Grace
	}
	return stopGrace
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to end and returns its exit
// error (nil for exit status 0), or an error if it is still running.
func (p *Process) Wait(timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		// Both may be ready at once; an ended process wins.
		if !p.Exited() {
			return fmt.Errorf("%s (pid %d) still running after %v", p.Name, p.PID(), timeout)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Signal sends sig to the process (not to its group).
func (p *Process) Signal(sig syscall.Signal) error {
	return p.Cmd.Process.Signal(sig)
}

// Stop asks the process to end with SIGTERM, kills its process group if it
// has not ended within a grace period, and kills whatever else is left in
// the group either way. It returns the exit error as Wait does; calling it
// again is harmless.
func (p *Process) Stop() error {
	if !p.Exited() {
		p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(p.grace()):
			syscall.Kill(-p.PID(), syscall.SIGKILL)
			<-p.done
		}
	}
	// Children that outlived the leader (workers mid-shutdown) are killed
	// too: a test must leave no process behind. ESRCH means none are left.
	syscall.Kill(-p.PID(), syscall.SIGKILL)
	return p.Wait(0)
}

// ExitCode returns the exit status of an ended process, or -1 if it was
// killed by a signal or is still running.
func (p *Process) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// port is closed before it is handed to a child, so another process could
// take it in between; on a test machine that race is rare enough, and the
// child fails loudly if it happens.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr returns "127.0.0.1:PORT" for a FreePort.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// tailBuffer is an io.Writer safe for concurrent use that keeps the last max
// bytes written.
type tailBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped int64
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
		b.dropped += int64(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("[%d bytes dropped]\n%s", b.dropped, b.buf.String())
	}
	return b.buf.String()
}

// envList turns vars into KEY=VALUE pairs after base, sorted for a stable
// command line in logs.
func envList(base []string, vars map[string]string) []string {
	env := append([]string(nil), base...)
	for _, k := range sortedKeys(vars) {
		env = append(env, k+"="+vars[k])
	}
	return env
}

// baseEnv is the environment every child gets: enough to find programs, and
// nothing from the developer's shell (a stray POLLRELOAD_* variable there
// would change what is tested).
func baseEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"HOME", "TMPDIR", "GORACE", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
