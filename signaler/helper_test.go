package signaler

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// The test binary doubles as the target processes: TestMain runs a helper
// mode instead of the tests when helperModeEnv is set. Helpers are started
// through a symlink with a unique name, so lookups by name find only the
// processes of one test.
const (
	helperModeEnv = "SIGNALER_HELPER_MODE"
	helperOutEnv  = "SIGNALER_HELPER_OUT"
	helperNameEnv = "SIGNALER_HELPER_NAME"
)

// waitFor bounds every wait on a helper so a broken test fails instead of
// hanging; it is not a speed assertion.
const waitFor = 20 * time.Second

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperModeEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(testenv.VerifyNoLeaks(m.Run()))
}

// runHelper runs one helper mode and returns its exit code.
//
//   - catch: handles SIGHUP, SIGUSR1 and SIGTERM, appends "ready" and then one
//     line per signal (its name) to the file in helperOutEnv; exits 7 after
//     SIGTERM, and 0 when stdin closes (its test ended).
//   - tree: starts two catch children of itself (same name; output files
//     OUT.1 and OUT.2; "child PID" lines in OUT), then behaves as catch.
//   - exit: exits at once with status 0.
//   - send: reloads PROCESS_NAME=helperNameEnv and prints the error, then
//     "inspect: " and the kill(pid, 0) error of each candidate.
func runHelper(mode string) int {
	switch mode {
	case "catch":
		return helperCatch(os.Getenv(helperOutEnv), nil)
	case "tree":
		return helperTree(os.Getenv(helperOutEnv))
	case "exit":
		return 0
	case "send":
		return helperSend(os.Getenv(helperNameEnv))
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}

func helperCatch(out string, keep []io.Closer) int {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	c := make(chan os.Signal, 16)
	signal.Notify(c, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM)
	// The pipes to the children's stdin must outlive this loop: if the
	// collector closed them, the children would see EOF and exit.
	defer runtime.KeepAlive(keep)
	fmt.Fprintln(f, "ready")
	for s := range c {
		fmt.Fprintln(f, signalName(s.(syscall.Signal)))
		if s == syscall.SIGTERM {
			return 7
		}
	}
	return 0
}

func helperTree(out string) int {
	// Let the children start at least one clock tick later than the parent,
	// so "oldest" has a single answer.
	time.Sleep(50 * time.Millisecond)
	var keep []io.Closer
	for i := 1; i <= 2; i++ {
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Args[0] = os.Args[0]
		cmd.Env = append(os.Environ(), helperModeEnv+"=catch", fmt.Sprintf("%s=%s.%d", helperOutEnv, out, i))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		keep = append(keep, stdin)
		if err := appendLine(out, fmt.Sprintf("child %d", cmd.Process.Pid)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	return helperCatch(out, keep)
}

func helperSend(name string) int {
	p, err := NewProcess(ProcessOptions{Names: []string{name}})
	if err != nil {
		fmt.Println(err)
		return 0
	}
	_, err = p.Reload(context.Background(), time.Now())
	fmt.Println(err)
	cands, err := p.Inspect()
	if err != nil {
		fmt.Println("inspect:", err)
		return 0
	}
	for _, c := range cands {
		fmt.Println("inspect:", c.KillErr)
	}
	return 0
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, line)
	return errors.Join(err, f.Close())
}

// uniqueName returns prefix plus random hex, at most 15 bytes for short
// prefixes, so that comm holds it whole.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// testBinary returns the path of the running test binary.
func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// linkAs makes dir/name a symlink to target and returns its path. A process
// started through it has comm and argv[0] "name", and exe the target.
func linkAs(t *testing.T, dir, name, target string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	out   string
	stdin *os.File
}

func (h *helper) pid() int { return h.cmd.Process.Pid }

// helperOpts says how to start a helper.
type helperOpts struct {
	path  string   // executable to run
	argv0 string   // argv[0]; empty means path
	args  []string // further arguments
	mode  string   // helper mode; empty runs path as is (not the test binary)
	env   []string
	cred  *syscall.Credential
	out   string // output file; empty means one in t.TempDir()
}

// startHelper starts a helper and stops it when the test ends.
func startHelper(t *testing.T, o helperOpts) *helper {
	t.Helper()
	out := o.out
	if out == "" {
		out = filepath.Join(t.TempDir(), "out")
	}
	cmd := exec.Command(o.path, o.args...)
	if o.argv0 != "" {
		cmd.Args[0] = o.argv0
	}
	// The race detector sleeps a second at exit by default; helpers that
	// exit on purpose need not.
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, o.env...)
	if o.mode != "" {
		cmd.Env = append(cmd.Env, helperModeEnv+"="+o.mode, helperOutEnv+"="+out)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if o.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.cred}
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	h := &helper{cmd: cmd, out: out, stdin: w}
	t.Cleanup(func() {
		w.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return h
}

// lines returns the lines of a helper output file so far.
func readLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// count returns how many lines of path equal line.
func count(path, line string) int {
	n := 0
	for _, l := range readLines(path) {
		if l == line {
			n++
		}
	}
	return n
}

// waitLine waits until path holds at least n lines equal to line.
func waitLine(t *testing.T, path, line string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for count(path, line) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: waited %s for %d line(s) %q; have %q", path, waitFor, n, line, readLines(path))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// barrier sends SIGUSR1 to pid and waits until the helper logged it: every
// signal sent before has then been handled too, so counts are final.
func barrier(t *testing.T, pid int, out string) {
	t.Helper()
	n := count(out, "SIGUSR1")
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatalf("barrier kill %d: %v", pid, err)
	}
	waitLine(t, out, "SIGUSR1", n+1)
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	st, err := readStat("/proc", pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

// childPIDs returns the "child PID" lines of a tree helper.
func childPIDs(t *testing.T, out string) []int {
	t.Helper()
	var pids []int
	for _, l := range readLines(out) {
		if rest, ok := strings.CutPrefix(l, "child "); ok {
			pid, err := strconv.Atoi(rest)
			if err != nil {
				t.Fatalf("bad line %q in %s", l, out)
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// copyFile copies src to dst with mode perm.
func copyFile(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(in).WriteTo(out); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// pids returns the PIDs of targets.
func pids(ts []Target) []int {
	out := make([]int, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.PID)
	}
	return out
}
