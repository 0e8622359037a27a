package signaler

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startChild starts a wrapper-mode child with a stdin pipe the test holds,
// and makes sure it is reaped when the test ends.
func startChild(t *testing.T, name string, args []string, opts ChildOptions) *Child {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Stdin == nil {
		opts.Stdin = r
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stderr
	}
	c, err := StartChild(name, args, opts)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.Close()
		_ = c.cmd.Process.Kill()
		_, _ = c.Wait()
	})
	return c
}

// catchEnv is the environment of a catch helper writing to out.
func catchEnv(out string) []string {
	return append(os.Environ(), helperModeEnv+"=catch", helperOutEnv+"="+out, "GORACE=atexit_sleep_ms=0")
}

// TestChildReloadForwardWait runs the whole wrapper life cycle against a
// real child: reload, forward SIGTERM, reap with its exit code.
func TestChildReloadForwardWait(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	c := startChild(t, testBinary(t), nil, ChildOptions{Env: catchEnv(out)})
	waitLine(t, out, "ready", 1)

	got, err := c.Reload(t.Context(), time.Now())
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if !slices.Equal(pids(got.Signalled), []int{c.PID()}) {
		t.Errorf("Signalled = %v; want [%d]", pids(got.Signalled), c.PID())
	}
	waitLine(t, out, "SIGHUP", 1)

	if err := c.Forward(syscall.SIGTERM); err != nil {
		t.Fatalf("Forward: %v", err)
	}
	code, err := c.Wait()
	if err != nil || code != 7 {
		t.Errorf("Wait = %d, %v; want 7 (the helper's SIGTERM exit code), nil", code, err)
	}
	if n := count(out, "SIGHUP"); n != 1 {
		t.Errorf("child received %d SIGHUP; want 1", n)
	}
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(c.PID()))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid %d still in /proc after Wait (%v); want it reaped", c.PID(), err)
	}

	// After the exit, reloads report no target and forwarding is a no-op.
	if _, err := c.Reload(t.Context(), time.Now()); !errors.Is(err, ErrNoTarget) {
		t.Errorf("Reload after exit = %v; want ErrNoTarget", err)
	}
	if err := c.Forward(syscall.SIGTERM); err != nil {
		t.Errorf("Forward after exit = %v; want nil", err)
	}
	if code2, err := c.Wait(); code2 != code || err != nil {
		t.Errorf("second Wait = %d, %v; want %d, nil", code2, err, code)
	}
}

// TestChildReloadWaitsForHandler checks wrapper mode applies the safety
// rule: the shell child is not sent SIGHUP until it traps it.
func TestChildReloadWaitsForHandler(t *testing.T) {
	dir := t.TempDir()
	out, gate := filepath.Join(dir, "out"), filepath.Join(dir, "gate")
	c := startChild(t, "sh", []string{"-c", lateHandlerScript, "sh", out, gate}, ChildOptions{})

	_, err := c.Reload(t.Context(), time.Now())
	if !errors.Is(err, ErrNotCatching) {
		t.Fatalf("Reload before the handler = %v; want ErrNotCatching", err)
	}
	t.Logf("before the handler: %v", err)
	if !alive(c.PID()) {
		t.Fatal("child died: the refused signal was sent anyway")
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, "ready", 1)
	if _, err := c.Reload(t.Context(), time.Now()); err != nil {
		t.Fatalf("Reload after the handler: %v", err)
	}
	waitLine(t, out, "SIGHUP", 1)
	if !alive(c.PID()) {
		t.Fatal("child died after the reload")
	}
	if err := c.Forward(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(); code != 128+int(syscall.SIGTERM) || err != nil {
		t.Errorf("Wait = %d, %v; want %d (killed by SIGTERM), nil", code, err, 128+int(syscall.SIGTERM))
	}
	if n := count(out, "SIGHUP"); n != 1 {
		t.Errorf("child received %d SIGHUP; want 1", n)
	}
}

func TestChildWaitExitCodes(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		forward os.Signal
		want    int
	}{
		{"exit 0", "exit 0", nil, 0},
		{"exit 3", "exit 3", nil, 3},
		{"killed by SIGKILL", "kill -9 $$", nil, 137},
		{"SIGINT forwarded", "exec sleep 60", syscall.SIGINT, 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startChild(t, "/bin/sh", []string{"-c", tt.script}, ChildOptions{})
			if tt.forward != nil {
				if err := c.Forward(tt.forward); err != nil {
					t.Fatal(err)
				}
			}
			if code, err := c.Wait(); code != tt.want || err != nil {
				t.Errorf("Wait = %d, %v; want %d, nil", code, err, tt.want)
			}
		})
	}
}

func TestChildStdioAndEnv(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := startChild(t, "sh", []string{"-c", `echo "$GREETING from $0"`, "child"}, ChildOptions{Stdout: f, Env: []string{"GREETING=hello"}})
	if code, err := c.Wait(); code != 0 || err != nil {
		t.Fatalf("Wait = %d, %v; want 0, nil", code, err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "hello from child\n"; got != want {
		t.Errorf("child wrote %q; want %q", got, want)
	}
}

// TestStartChildErrors checks the start errors name the command once and
// keep the cause, from which wrapper mode takes its exit code (127, 126).
func TestStartChildErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		want    string
		wantErr error
	}{
		{"no-such-command-pollreload", "start no-such-command-pollreload: executable file not found in $PATH", exec.ErrNotFound},
		{dir + "/missing", "start " + dir + "/missing: no such file or directory", fs.ErrNotExist},
		{plain, "start " + plain + ": permission denied", fs.ErrPermission},
	}
	for _, tt := range tests {
		_, err := StartChild(tt.name, nil, ChildOptions{})
		if err == nil || err.Error() != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("StartChild(%q) = %v; want %q wrapping %v", tt.name, err, tt.want, tt.wantErr)
		}
	}
}

// TestChildReloadUpToDate checks a child started after the change is not
// signalled: it read the new configuration at start.
func TestChildReloadUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	changedAt := time.Now()
	time.Sleep(2 * startSlack)
	c := startChild(t, testBinary(t), nil, ChildOptions{Env: catchEnv(out)})
	waitLine(t, out, "ready", 1)
	got, err := c.Reload(t.Context(), changedAt)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if len(got.Signalled) != 0 || !slices.Equal(pids(got.UpToDate), []int{c.PID()}) {
		t.Errorf("Outcome = %+v; want pid %d up to date only", got, c.PID())
	}
	barrier(t, c.PID(), out)
	if n := count(out, "SIGHUP"); n != 0 {
		t.Errorf("child received %d SIGHUP; want 0", n)
	}
}

func TestStartChildRejectsUncatchableSignal(t *testing.T) {
	_, err := StartChild("sh", []string{"-c", "exit 0"}, ChildOptions{Signal: syscall.SIGKILL})
	if err == nil || !strings.Contains(err.Error(), "SIGKILL cannot be caught") {
		t.Errorf("StartChild with SIGKILL = %v; want an error saying it cannot be caught", err)
	}
}

// TestChildOutlivesForkingThread starts the child from a goroutine whose
// locked thread then exits. The parent-death signal follows the thread that
// forked, so a child forked there would be killed now
// (https://go.dev/issue/27505); StartChild forks from a thread of its own,
// which lives as long as the child.
func TestChildOutlivesForkingThread(t *testing.T) {
	started := make(chan *Child, 1)
	tids := make(chan int, 1)
	var start func(done chan<- struct{})
	start = func(done chan<- struct{}) {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if syscall.Gettid() == os.Getpid() {
			// The main thread is never ended, only parked: hold it, so that
			// the child is started from another thread.
			inner := make(chan struct{})
			go start(inner)
			<-inner
			runtime.UnlockOSThread()
			return
		}
		tids <- syscall.Gettid()
		started <- startChild(t, "sleep", []string{"600"}, ChildOptions{})
	}
	go start(make(chan struct{}))
	c := <-started
	tid := <-tids
	task := fmt.Sprintf("/proc/self/task/%d", tid)
	deadline := time.Now().Add(waitFor)
	for {
		if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d did not exit", tid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The parent-death signal is sent while the thread exits, before its
	// /proc entry goes: by now the child is dead, dying, or has SIGKILL
	// pending (SigPnd, ShdPnd), unless it was forked elsewhere.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.PID()))
	if err != nil || c.exited() {
		code, _ := c.Wait()
		t.Fatalf("child died with the thread that started it (exit code %d, %v)", code, err)
	}
	kill := uint64(1) << (syscall.SIGKILL - 1)
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		switch k {
		case "State":
			if strings.HasPrefix(strings.TrimSpace(v), "Z") || strings.HasPrefix(strings.TrimSpace(v), "X") {
				t.Fatalf("child is %s after its starting thread exited; want it running", strings.TrimSpace(v))
			}
		case "SigPnd", "ShdPnd":
			if m, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64); m&kill != 0 {
				t.Fatalf("child has SIGKILL pending (%s %s) after its starting thread exited", k, strings.TrimSpace(v))
			}
		}
	}
}
