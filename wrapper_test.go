package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pollreload/pollreload/internal/testenv"
)

// The wrapper tests run the test binary as `pollreload -- CMD`, send it real
// signals, give it a real pseudo-terminal and let its child orphan real
// processes. Waits are bounds for a hung test, not speed requirements.

const wrapperWait = 20 * time.Second

// beSignalCounter is the child of the wrapper tests: it handles every
// signal pollreload forwards, appends "ready" and then each signal's name
// to the file WRAPPER_OUT names, and exits 0 after SIGTERM.
func beSignalCounter() {
	out := os.Getenv("WRAPPER_OUT")
	c := make(chan os.Signal, 64)
	signal.Notify(c, forwardedSignals()...)
	appendLine(out, "ready")
	for s := range c {
		appendLine(out, signalName(s.(syscall.Signal)))
		if s == syscall.SIGTERM {
			os.Exit(0)
		}
	}
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Fprintln(f, line)
	f.Close()
}

// counterArgs are the arguments after `--` that run beSignalCounter.
func counterArgs() []string {
	return []string{"--", "sh", "-c", `BE_TEST_PROGRAM=sigcounter exec "$0"`, os.Args[0]}
}

// countLines returns how often line occurs in the file at path.
func countLines(path, line string) int {
	b, _ := os.ReadFile(path)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l == line {
			n++
		}
	}
	return n
}

// waitFor polls cond until it returns nil or wrapperWait passes.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(wrapperWait)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitCount(t *testing.T, path, line string, n int) {
	t.Helper()
	waitFor(t, "child output", func() error {
		if got := countLines(path, line); got < n {
			return fmt.Errorf("%q seen %d times; want %d", line, got, n)
		}
		return nil
	})
}

// procState returns the state letter of /proc/PID/stat ("S", "T", "Z"), or
// "gone" when the process has been reaped.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "gone"
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

// procField returns a field of /proc/PID/status ("PPid", "NSpid").
func procField(pid int, field string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid file "+path, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	return pid
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startWrapper starts the test binary as pollreload with env and args,
// and stops it when the test ends.
func startWrapper(t *testing.T, env []string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := program(t, "pollreload", append([]string{"METRICS_ADDR="}, env...), args...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pollreload stderr:\n%s", stderr.String())
		}
	})
	return cmd, &stderr
}

// exitCodeOf waits for cmd and returns its exit code (128+N if signal N
// killed it).
func exitCodeOf(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(wrapperWait):
		t.Fatalf("pollreload did not exit within %v", wrapperWait)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", err)
	return -1
}

// TestWrapperForwardsSignals sends pollreload every kind of signal an
// application expects and checks each reaches the child exactly once while
// pollreload keeps running; SIGHUP used to kill pollreload (exit 129),
// SIGQUIT to dump goroutines, and SIGUSR1/SIGUSR2 were dropped.
func TestWrapperForwardsSignals(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "signals")
	pr, _ := startWrapper(t, []string{"CONFIG_DIR=" + dir, "WRAPPER_OUT=" + out}, counterArgs()...)
	waitCount(t, out, "ready", 1)

	sigs := []syscall.Signal{
		syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH,
		syscall.SIGALRM, syscall.SIGCONT, syscall.SIGTSTP, syscall.SIGPWR, syscall.SIGINT,
		syscall.Signal(35), syscall.Signal(64),
	}
	for _, s := range sigs {
		if err := pr.Process.Signal(s); err != nil {
			t.Fatalf("send %v: %v", s, err)
		}
		waitCount(t, out, signalName(s), 1)
		if st := procState(pr.Process.Pid); st == "Z" || st == "gone" {
			t.Fatalf("pollreload died of %s", signalName(s))
		}
	}
	if err := pr.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, pr); code != 0 {
		t.Errorf("pollreload exit code = %d; want 0 (the child's after SIGTERM)", code)
	}
	got, _ := os.ReadFile(out)
	t.Logf("child received:\n%s", got)
	for _, s := range append(sigs, syscall.SIGTERM) {
		if n := countLines(out, signalName(s)); n != 1 {
			t.Errorf("child received %s %d times; want 1", signalName(s), n)
		}
	}
}

// orphanScript makes the child orphan a grandchild: a subshell starts
// `sleep` in the background, writes its PID to $1 and exits; then the child
// writes $2 and stays.
const orphanScript = `(sleep 600 & echo $! > "$1"); echo orphaned > "$2"; exec sleep 600`

// checkOrphanReaped checks that the orphan (outer PID gc) was adopted by
// pollreload (outer PID pr), kills it, and checks that pollreload reaps it:
// a process that nobody reaps stays in /proc in state Z.
func checkOrphanReaped(t *testing.T, pr, gc int) {
	t.Helper()
	if got, want := procField(gc, "PPid"), strconv.Itoa(pr); got != want {
		t.Fatalf("orphan %d has parent %s; want pollreload (%s)", gc, got, want)
	}
	if err := syscall.Kill(gc, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "orphan reaped", func() error {
		if st := procState(gc); st != "gone" {
			return fmt.Errorf("orphan %d is in state %s; want it reaped", gc, st)
		}
		return nil
	})
	t.Logf("orphan %d was adopted by pollreload %d and reaped after it died", gc, pr)
}

// waitExists waits until path exists.
func waitExists(t *testing.T, path string) {
	t.Helper()
	waitFor(t, "file", func() error { _, err := os.Stat(path); return err })
}

// TestWrapperReapsOrphansAsSubreaper: outside a PID namespace pollreload is
// the child subreaper, so the orphan becomes its child and must be reaped.
func TestWrapperReapsOrphansAsSubreaper(t *testing.T) {
	dir := t.TempDir()
	gcFile, mark := filepath.Join(dir, "gc"), filepath.Join(dir, "orphaned")
	pr, _ := startWrapper(t, []string{"CONFIG_DIR=" + dir}, "--", "sh", "-c", orphanScript, "sh", gcFile, mark)
	waitExists(t, mark)
	gc := readPID(t, gcFile)
	t.Cleanup(func() { syscall.Kill(gc, syscall.SIGKILL) })
	checkOrphanReaped(t, pr.Process.Pid, gc)

	if err := pr.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, pr); code != 128+int(syscall.SIGTERM) {
		t.Errorf("pollreload exit code = %d; want %d (sleep killed by the forwarded SIGTERM)", code, 128+int(syscall.SIGTERM))
	}
}

// outerPID returns the PID, as this test sees it, of the process that has
// PID inner in the PID namespace nsLink (/proc/PID/ns/pid) names.
func outerPID(t *testing.T, nsLink string, inner int) int {
	t.Helper()
	ns, err := os.Readlink(nsLink)
	if err != nil {
		t.Fatal(err)
	}
	var found int
	waitFor(t, "process "+strconv.Itoa(inner)+" in the namespace", func() error {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			ids := strings.Fields(procField(pid, "NSpid"))
			if len(ids) < 2 || ids[len(ids)-1] != strconv.Itoa(inner) {
				continue
			}
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); l == ns {
				found = pid
				return nil
			}
		}
		return errors.New("not found")
	})
	return found
}

// TestWrapperReapsOrphansAsPID1 runs pollreload as PID 1 of a new PID
// namespace, as a container entrypoint: orphans are its children whatever
// it asks, and it must reap them and still forward signals.
func TestWrapperReapsOrphansAsPID1(t *testing.T) {
	unshare := testenv.RequireTool(t, "unshare", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("unshare --pid needs root")
	}
	dir := t.TempDir()
	gcFile, mark := filepath.Join(dir, "gc"), filepath.Join(dir, "orphaned")
	cmd := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "METRICS_ADDR="},
		"--", "sh", "-c", orphanScript, "sh", gcFile, mark)
	// --kill-child: when the test kills unshare, the kernel kills pollreload.
	cmd.Args = append([]string{unshare, "--pid", "--fork", "--kill-child", "--mount-proc", cmd.Path}, cmd.Args[1:]...)
	cmd.Path = unshare
	var stderr syncBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})
	waitExists(t, mark)
	// unshare stays in the old namespace; its children are in the new one.
	pr := outerPID(t, fmt.Sprintf("/proc/%d/ns/pid_for_children", cmd.Process.Pid), 1)
	gc := outerPID(t, fmt.Sprintf("/proc/%d/ns/pid", pr), readPID(t, gcFile))
	t.Cleanup(func() { syscall.Kill(gc, syscall.SIGKILL) })
	if got := procField(pr, "NSpid"); !strings.HasSuffix(got, "\t1") && !strings.HasSuffix(got, " 1") {
		t.Fatalf("pollreload NSpid = %q; want PID 1 in its namespace", got)
	}
	checkOrphanReaped(t, pr, gc)

	// As PID 1, a signal from outside arrives only because pollreload
	// handles it; it must still reach the child.
	if err := syscall.Kill(pr, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, cmd); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code = %d; want %d (sleep killed by the forwarded SIGTERM)", code, 128+int(syscall.SIGTERM))
	}
}

// openPTY returns the master and the terminal (slave) of a new
// pseudo-terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); tty.Close() })
	return master, tty
}

// startAtTerminal starts pollreload as a shell starts a job at a terminal:
// in a session whose controlling terminal is a new pty, in its foreground
// process group. What pollreload writes to the terminal is collected.
// With stdin false, pollreload's stdin is /dev/null instead, as for a
// background job of a script.
func startAtTerminal(t *testing.T, stdin bool, env []string, args ...string) (pr *exec.Cmd, master *os.File, screen *syncBuffer) {
	t.Helper()
	master, tty := openPTY(t)
	pr = program(t, "pollreload", append([]string{"METRICS_ADDR="}, env...), args...)
	pr.Stdin, pr.Stdout, pr.Stderr = tty, tty, tty
	if !stdin {
		pr.Stdin = nil // /dev/null
	}
	pr.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 1}
	if err := pr.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	screen = &syncBuffer{}
	go io.Copy(screen, master)
	t.Cleanup(func() {
		pr.Process.Kill()
		pr.Wait()
		if t.Failed() {
			t.Logf("terminal:\n%s", screen.String())
		}
	})
	return pr, master, screen
}

// TestWrapperCtrlCAtTerminal types Ctrl-C at a real terminal and counts the
// SIGINTs the child gets: one. The child used to share pollreload's process
// group, so the terminal sent SIGINT to both and pollreload forwarded a
// second one.
func TestWrapperCtrlCAtTerminal(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "signals")
	pr, master, _ := startAtTerminal(t, true, []string{"CONFIG_DIR=" + dir, "WRAPPER_OUT=" + out}, counterArgs()...)
	waitCount(t, out, "ready", 1)
	if _, err := master.Write([]byte{0x03}); err != nil { // ^C
		t.Fatal(err)
	}
	waitCount(t, out, "SIGINT", 1)
	// A signal sent after the terminal's SIGINT reaches the child after any
	// SIGINT pollreload forwards: once it is there, all SIGINTs are in.
	if err := pr.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitCount(t, out, "SIGUSR1", 1)
	if n := countLines(out, "SIGINT"); n != 1 {
		t.Errorf("child received SIGINT %d times after one Ctrl-C; want 1", n)
	}
	if err := pr.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, pr); code != 0 {
		t.Errorf("pollreload exit code = %d; want 0", code)
	}
}

// TestWrapperLeavesTerminalWithoutStdin starts pollreload as a script's
// background job is started: in the terminal's foreground group, stdin from
// /dev/null. The terminal must stay with that group (taking it would stop
// the script at its next terminal ioctl), and Ctrl-C, which then reaches
// pollreload, is passed on once.
func TestWrapperLeavesTerminalWithoutStdin(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "signals")
	pr, master, _ := startAtTerminal(t, false, []string{"CONFIG_DIR=" + dir, "WRAPPER_OUT=" + out}, counterArgs()...)
	waitCount(t, out, "ready", 1)
	child := 0
	waitFor(t, "child", func() error {
		// Children are listed by the thread that forked them.
		lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pr.Process.Pid))
		for _, l := range lists {
			b, _ := os.ReadFile(l)
			if f := strings.Fields(string(b)); len(f) > 0 {
				var err error
				child, err = strconv.Atoi(f[0])
				return err
			}
		}
		return errors.New("no child yet")
	})
	// Field 5 is the process group, field 8 the terminal's foreground group.
	if pgrp, tpgid := procStatField(child, 5), procStatField(child, 8); pgrp != strconv.Itoa(child) || tpgid != strconv.Itoa(pr.Process.Pid) {
		t.Errorf("child's process group %s, terminal's foreground group %s; want %d (its own), %d (pollreload's)", pgrp, tpgid, child, pr.Process.Pid)
	}
	if _, err := master.Write([]byte{0x03}); err != nil { // ^C
		t.Fatal(err)
	}
	waitCount(t, out, "SIGINT", 1)
	if err := pr.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitCount(t, out, "SIGUSR1", 1)
	if n := countLines(out, "SIGINT"); n != 1 {
		t.Errorf("child received SIGINT %d times after one Ctrl-C; want 1", n)
	}
}

// procStatField returns field n (1-based, as in proc(5)) of /proc/PID/stat.
func procStatField(pid, n int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:]) // from field 3, state
	if n-3 < 0 || n-3 >= len(fields) {
		return ""
	}
	return fields[n-3]
}

// TestWrapperJobControlAtTerminal runs pollreload as a job of a real
// interactive bash at a real terminal. Ctrl-Z stops the child, and
// pollreload stops with it, so that bash sees its job stop and gets the
// terminal back; `fg` continues both and pollreload gives the terminal to
// the child again; Ctrl-C ends the child and pollreload exits with its
// status, 130.
func TestWrapperJobControlAtTerminal(t *testing.T) {
	bash := testenv.RequireTool(t, "bash", "bash")
	dir := t.TempDir()
	pidFile, status := filepath.Join(dir, "pid"), filepath.Join(dir, "status")
	master, tty := openPTY(t)
	sh := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "METRICS_ADDR=", "TERM=dumb"})
	sh.Path, sh.Args = bash, []string{bash, "--norc", "--noprofile", "-i"}
	sh.Stdin, sh.Stdout, sh.Stderr = tty, tty, tty
	sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	sh.WaitDelay = time.Second
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	screen := &syncBuffer{}
	go io.Copy(screen, master)
	t.Cleanup(func() {
		sh.Process.Kill()
		sh.Wait()
		if t.Failed() {
			t.Logf("terminal:\n%s", screen.String())
		}
	})
	typeIn := func(s string) {
		t.Helper()
		if _, err := master.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	typeIn(fmt.Sprintf("%s -- sh -c 'echo $$ > %s; exec sleep 600'\n", os.Args[0], pidFile))
	child := readPID(t, pidFile)
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	pr, _ := strconv.Atoi(procField(child, "PPid"))
	waitFor(t, "child execs sleep with the terminal", func() error {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", child))
		if tpgid := procStatField(child, 8); string(comm) != "sleep\n" || tpgid != strconv.Itoa(child) {
			return fmt.Errorf("child runs %q, terminal foreground group %s; want sleep, %d", comm, tpgid, child)
		}
		return nil
	})
	states := func(want string) func() error {
		return func() error {
			if c, p := procState(child), procState(pr); c != want || p != want {
				return fmt.Errorf("child is %s, pollreload is %s; want both %s", c, p, want)
			}
			return nil
		}
	}

	typeIn("\x1a") // ^Z
	waitFor(t, "after Ctrl-Z", states("T"))
	waitFor(t, "bash takes the terminal back", func() error {
		if tpgid := procStatField(child, 8); tpgid != strconv.Itoa(sh.Process.Pid) {
			return fmt.Errorf("terminal foreground group %s; want bash's %d", tpgid, sh.Process.Pid)
		}
		return nil
	})
	t.Logf("after Ctrl-Z: child %s, pollreload %s, terminal with bash", procState(child), procState(pr))

	typeIn("fg\n")
	waitFor(t, "after fg", states("S"))
	waitFor(t, "the child has the terminal again", func() error {
		if tpgid := procStatField(child, 8); tpgid != strconv.Itoa(child) {
			return fmt.Errorf("terminal foreground group %s; want the child's %d", tpgid, child)
		}
		return nil
	})
	t.Logf("after fg: child %s, pollreload %s, terminal with the child", procState(child), procState(pr))

	typeIn("\x03") // ^C
	waitFor(t, "pollreload exits", func() error {
		if st := procState(pr); st != "gone" {
			return fmt.Errorf("pollreload is %s", st)
		}
		return nil
	})
	typeIn(fmt.Sprintf("echo $? > %s; exit\n", status))
	waitExists(t, status)
	waitFor(t, "exit status", func() error {
		b, _ := os.ReadFile(status)
		if got := strings.TrimSpace(string(b)); got != "130" {
			return fmt.Errorf("pollreload exited with %q; want 130 (sleep killed by Ctrl-C)", got)
		}
		return nil
	})
}

// TestWrapperChildDiesWithPollreload kills pollreload with SIGKILL, which
// it cannot forward: the kernel must kill the child (parent-death signal)
// instead of leaving it running unsupervised.
func TestWrapperChildDiesWithPollreload(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	pr, _ := startWrapper(t, []string{"CONFIG_DIR=" + dir}, "--", "sh", "-c", `echo $$ > "$0"; exec sleep 600`, pidFile)
	child := readPID(t, pidFile)
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	if err := pr.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, pr); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("pollreload exit code = %d; want %d", code, 128+int(syscall.SIGKILL))
	}
	waitFor(t, "child dies with pollreload", func() error {
		if st := procState(child); st != "Z" && st != "gone" {
			return fmt.Errorf("child %d is still running (state %s)", child, st)
		}
		return nil
	})
}

// TestWrapperStartFailures checks the exit codes shells and tini use for a
// command that cannot be started, with one line that names it once.
func TestWrapperStartFailures(t *testing.T) {
	dir := t.TempDir()
	noExec := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(noExec, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte{0x7f, 'E', 'L', 'F', 0, 0, 0}, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cmd string
		code      int
		stderr    string
	}{
		{"not in PATH", "no-such-command-pollreload", 127, "pollreload: start no-such-command-pollreload: executable file not found in $PATH"},
		{"no such path", dir + "/missing", 127, "pollreload: start " + dir + "/missing: no such file or directory"},
		{"not executable", noExec, 126, "pollreload: start " + noExec + ": permission denied"},
		{"directory", dir, 126, "pollreload: start " + dir + ": permission denied"},
		{"not a program", garbage, 126, "pollreload: start " + garbage + ": exec format error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "METRICS_ADDR="}, "--", tt.cmd)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			cmd.Run()
			if got := cmd.ProcessState.ExitCode(); got != tt.code {
				t.Errorf("exit code = %d; want %d", got, tt.code)
			}
			if got := strings.TrimSpace(stderr.String()); got != tt.stderr {
				t.Errorf("stderr = %q; want %q", got, tt.stderr)
			}
		})
	}
}

// sigwaitApp is an application that takes SIGHUP with sigwait(2), as
// sigwait and signalfd programs do: the signal is blocked, not caught, so
// /proc shows no handler, and only RELOAD_FORCE can reload it.
const sigwaitApp = `import signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
print("ready", flush=True)
while True:
    signal.sigwait({signal.SIGHUP})
    print("reloaded", flush=True)
`

// TestWrapperReloadForce changes the watched file under a sigwait child:
// RELOAD_FORCE=true reloads it; without it the reload is refused and stays
// pending, as in daemon mode.
func TestWrapperReloadForce(t *testing.T) {
	python := testenv.RequireTool(t, "python3", "python3")
	for _, force := range []bool{true, false} {
		t.Run("RELOAD_FORCE="+strconv.FormatBool(force), func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "app.conf")
			if err := os.WriteFile(conf, []byte("v1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			pr := program(t, "pollreload", []string{
				"CONFIG_DIR=" + dir, "POLL_INTERVAL=100ms", "SETTLE_TIME=100ms", "METRICS_ADDR=",
				"RELOAD_FORCE=" + strconv.FormatBool(force),
			}, "--", python, "-c", sigwaitApp)
			pout, _ := pr.StdoutPipe()
			perr, _ := pr.StderrPipe()
			if err := pr.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pr.Process.Kill(); pr.Wait() })
			out, logs := readLines(pout), readLines(perr)
			out.waitLine(t, "ready", wrapperWait)
			logs.waitLine(t, "baseline taken", wrapperWait)
			if err := os.WriteFile(conf, []byte("v2\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if force {
				out.waitLine(t, "reloaded", wrapperWait)
				t.Log("the sigwait child reloaded")
				return
			}
			line := logs.waitLine(t, "has no SIGHUP handler", wrapperWait)
			t.Logf("refused: %s", line)
			// The fix (config.Fix) reaches the wrapper's log too.
			if want := ` fix="the reload stays pending until it installs one; RELOAD_FORCE=true sends anyway"`; !strings.HasSuffix(line, want) {
				t.Errorf("refusal %q does not end with %q", line, want)
			}
			if st := procState(pr.Process.Pid); st == "Z" || st == "gone" {
				t.Fatal("pollreload exited: the refused SIGHUP was sent")
			}
		})
	}
}

// TestWrapperMetricsAddrInUse: a METRICS_ADDR that cannot be bound stops
// pollreload with exit 1 before the child is started, as in daemon mode.
func TestWrapperMetricsAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	cmd := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "METRICS_ADDR=" + addr},
		"--", "sh", "-c", `touch "$0"`, started)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	if got := cmd.ProcessState.ExitCode(); got != 1 {
		t.Errorf("exit code = %d; want 1", got)
	}
	want := fmt.Sprintf("pollreload: METRICS_ADDR=%q: listen tcp %s: bind: address already in use", addr, addr)
	if got := strings.TrimSpace(stderr.String()); got != want {
		t.Errorf("stderr = %q; want %q", got, want)
	}
	if _, err := os.Stat(started); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the child was started (stat %s: %v); want pollreload to stop before", started, err)
	}
}
