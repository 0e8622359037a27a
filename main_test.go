package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/config"
	"github.com/pollreload/pollreload/internal/testenv"
)

// The test binary doubles as pollreload itself and as a reload target, so
// tests can run real processes without a separate build.
func TestMain(m *testing.M) {
	switch os.Getenv("BE_TEST_PROGRAM") {
	case "pollreload":
		main()
	case "target":
		beTarget()
	case "sigcounter":
		beSignalCounter()
	default:
		os.Exit(testenv.VerifyNoLeaks(m.Run()))
	}
}

// beTarget counts SIGHUPs: it prints "ready" once its handler is installed
// and "hup N" for every signal.
func beTarget() {
	hup := make(chan os.Signal, 16)
	signal.Notify(hup, syscall.SIGHUP)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Println("ready")
	n := 0
	for {
		select {
		case <-hup:
			n++
			fmt.Printf("hup %d\n", n)
		case <-term:
			os.Exit(0)
		}
	}
}

// program starts the test binary in one of its roles.
func program(t *testing.T, role string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	// The race detector sleeps a second at exit unless told not to.
	cmd.Env = append([]string{"BE_TEST_PROGRAM=" + role, "PATH=" + os.Getenv("PATH"), "GORACE=atexit_sleep_ms=0"}, env...)
	return cmd
}

func TestRunCommands(t *testing.T) {
	t.Run("help lists every variable", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"--help"}, nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		for _, v := range config.Variables() {
			if !strings.Contains(out.String(), "\n  "+v+" ") {
				t.Errorf("--help does not list %s:\n%s", v, out.String())
			}
		}
		if !strings.Contains(out.String(), "POLL_INTERVAL        2s") {
			t.Errorf("--help does not show POLL_INTERVAL's default:\n%s", out.String())
		}
	})
	t.Run("version", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"--version"}, nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("pollreload dev (commit unknown, unknown, %s %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		if got := out.String(); got != want {
			t.Errorf("--version = %q; want %q", got, want)
		}
	})
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		wantErr  string
	}{
		{"unknown argument", []string{"--frobnicate"}, nil, 2, `pollreload: usage: unknown argument "--frobnicate"; see pollreload --help`},
		{"missing CONFIG_DIR", nil, []string{"PROCESS_NAME=app"}, 2, "pollreload: CONFIG_DIR is not set: want a comma-separated list of directories or files to watch"},
		{"CONFIG_DIR does not exist", nil, []string{"CONFIG_DIR=" + dir + "/nope", "PROCESS_NAME=app"}, 2,
			`pollreload: invalid CONFIG_DIR="` + dir + `/nope": does not exist; want existing directories or files`},
		{"unknown signal", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "RELOAD_SIGNAL=SIGBOGUS"}, 2,
			`pollreload: invalid RELOAD_SIGNAL="SIGBOGUS": want a name such as SIGHUP, HUP or hup, or a number from 1 to 31`},
		{"signal 40 says 1 to 31", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "RELOAD_SIGNAL=40"}, 2,
			`pollreload: invalid RELOAD_SIGNAL="40": want a name such as SIGHUP, HUP or hup, or a number from 1 to 31`},
		{"SIGKILL cannot be caught", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "RELOAD_SIGNAL=SIGKILL"}, 2,
			`pollreload: invalid RELOAD_SIGNAL="SIGKILL": SIGKILL cannot be caught, so it cannot ask an application to reload; use a signal the application handles, such as SIGHUP`},
		{"interval below minimum", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "POLL_INTERVAL=50ms"}, 2,
			`pollreload: invalid POLL_INTERVAL="50ms": want a Go duration from 100ms to 24h, such as 2s`},
		{"interval overflow", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "POLL_INTERVAL=1000000h"}, 2,
			`pollreload: invalid POLL_INTERVAL="1000000h0m0s": want a Go duration from 100ms to 24h, such as 2s`},
		{"missed scans overflow", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "HEALTH_MISSED_SCANS=5000000000"}, 2,
			`pollreload: invalid HEALTH_MISSED_SCANS="5000000000": want a whole number from 1 to 1000`},
		{"prefixed name as given", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "POLLRELOAD_POLL_INTERVAL=50ms"}, 2,
			`pollreload: invalid POLLRELOAD_POLL_INTERVAL="50ms": want a Go duration from 100ms to 24h, such as 2s`},
		{"set but empty", nil, []string{"CONFIG_DIR=", "PROCESS_NAME=app"}, 2,
			"pollreload: CONFIG_DIR is set but empty: want a comma-separated list of directories or files to watch"},
		{"empty signal", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "POLLRELOAD_RELOAD_SIGNAL="}, 2,
			"pollreload: POLLRELOAD_RELOAD_SIGNAL is set but empty: want a name such as SIGHUP, HUP or hup, or a number from 1 to 31"},
		{"metrics host does not resolve", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "METRICS_ADDR=bogus.invalid:9533"}, 2,
			`pollreload: invalid METRICS_ADDR="bogus.invalid:9533": the host does not resolve (.invalid is reserved, RFC 6761); want host:port with a resolvable host or an IP, such as :9533 or 127.0.0.1:9533`},
		{"bad glob", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "INCLUDE=*.conf,[a-"}, 2,
			`pollreload: invalid INCLUDE="[a-": want comma-separated globs such as *.conf, conf.d/* or **/*.pem`},
		{"typo among service links", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "POLLRELOAD_SERVICE_HOST=10.0.0.7", "POLLRELOAD_LOG_FORMATT=json"}, 2,
			"pollreload: unknown variable POLLRELOAD_LOG_FORMATT (did you mean POLLRELOAD_LOG_FORMAT?); see pollreload --help"},
		{"unknown flag", []string{"--volume-dir=" + dir, "--frobnicate=1"}, nil, 2, `pollreload: usage: unknown argument "--frobnicate=1"; see pollreload --help`},
		{"flag without value", []string{"--volume-dir"}, nil, 2, `pollreload: usage: --volume-dir needs a value, as in --volume-dir=VALUE`},
		{"flag value named as the flag", []string{"--watched-dir=" + dir, "--reload-url=http://127.0.0.1:9/", "--watch-interval=soon"}, nil, 2,
			`pollreload: invalid --watch-interval="soon": want a Go duration such as 500ms, 2s or 1m`},
		{"config rendering refused", []string{"--reload-url=http://127.0.0.1:9/", "--config-file=" + dir + "/p.yaml.gz", "--config-envsubst-file=" + dir + "/out.yaml", "--watched-dir=" + dir}, nil, 2,
			`pollreload: invalid --config-envsubst-file="` + dir + `/out.yaml": pollreload does not render configuration (environment substitution, gunzip); keep prometheus-config-reloader for rendering, or render it in an init container, and point --watched-dir (or CONFIG_DIR) at the rendered directory`},
		{"bad address", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "METRICS_ADDR=nowhere"}, 2,
			`pollreload: invalid METRICS_ADDR="nowhere": want host:port or :port, such as :9533 or 127.0.0.1:9533 (empty disables)`},
		{"check command with a shell variable", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "RELOAD_CHECK_COMMAND=nginx -t -c $CONF"}, 2,
			`pollreload: invalid RELOAD_CHECK_COMMAND="nginx -t -c $CONF": it holds '$', which only a shell expands (no variables or command substitution without one): set RELOAD_CHECK_SHELL=true, or write the value out`},
		{"check command with a pipe", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "POLLRELOAD_RELOAD_CHECK_COMMAND=nginx -t | grep ok"}, 2,
			`pollreload: invalid POLLRELOAD_RELOAD_CHECK_COMMAND="nginx -t | grep ok": it holds a shell operator (; & | < >), which runs only in a shell: set RELOAD_CHECK_SHELL=true, or quote it`},
		{"check shell without a command", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "RELOAD_CHECK_SHELL=true"}, 2,
			"pollreload: RELOAD_CHECK_SHELL is set but RELOAD_CHECK_COMMAND is not: set the command to run, or unset it"},
		{"check timeout zero", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "RELOAD_CHECK_COMMAND=true", "RELOAD_CHECK_TIMEOUT=0s"}, 2,
			`pollreload: invalid RELOAD_CHECK_TIMEOUT="0s": want a Go duration above 0 and at most 1h, such as 30s`},
		{"typo", nil, []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app", "POLLRELOAD_PROCES_NAME=x"}, 2,
			"pollreload: unknown variable POLLRELOAD_PROCES_NAME (did you mean POLLRELOAD_PROCESS_NAME?); see pollreload --help"},
		{"hash without path", []string{"hash"}, nil, 2, "pollreload: usage: hash needs at least one path, as in pollreload hash /etc/app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := program(t, "pollreload", tt.env, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("run: %v; want exit code %d", err, tt.wantCode)
			}
			if got := ee.ExitCode(); got != tt.wantCode {
				t.Errorf("exit code = %d; want %d", got, tt.wantCode)
			}
			if got := strings.TrimSpace(stderr.String()); got != tt.wantErr {
				t.Errorf("stderr = %q; want %q", got, tt.wantErr)
			}
		})
	}
}

func TestConfigDirUnreadable(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run pollreload as another user")
	}
	dir := filepath.Join(t.TempDir(), "secret")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// t.TempDir's directories are private to root; open them to uid 65534.
	for d := filepath.Dir(dir); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The test binary's own directory is private to root: run a copy.
	bin := filepath.Join(filepath.Dir(dir), "pollreload")
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=app"})
	cmd.Path = bin
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("run: %v (stderr %q); want exit code 2", err, stderr.String())
	}
	want := `pollreload: invalid CONFIG_DIR="` + dir + `": is not readable by uid 65534; want paths this user can read`
	if got := strings.TrimSpace(stderr.String()); got != want {
		t.Errorf("stderr = %q; want %q", got, want)
	}
}

// lineReader collects a process's output lines for tests to wait on.
type lineReader struct {
	lines chan string
}

func readLines(r io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
		close(lr.lines)
	}()
	return lr
}

// waitLine waits for a line containing want. The timeout is a bound for a
// hung test, not a speed requirement.
func (lr *lineReader) waitLine(t *testing.T, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lr.lines:
			if !ok {
				t.Fatalf("output ended before %q", want)
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-deadline:
			t.Fatalf("no line with %q within %v", want, timeout)
		}
	}
}

// TestDaemonSignalsRealProcess runs pollreload as users do, against a real
// process, edits the watched file, and counts the signals the process got.
func TestDaemonSignalsRealProcess(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A target with a name of its own, so that no other test's process matches.
	name := fmt.Sprintf("tgt%d", os.Getpid())
	bin := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	target := exec.Command(bin)
	target.Env = []string{"BE_TEST_PROGRAM=target"}
	tout, _ := target.StdoutPipe()
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Process.Kill(); target.Wait() })
	targetLines := readLines(tout)
	targetLines.waitLine(t, "ready", 10*time.Second)

	pr := program(t, "pollreload", []string{
		"CONFIG_DIR=" + dir, "PROCESS_NAME=" + name, "POLL_INTERVAL=100ms", "SETTLE_TIME=200ms",
		"METRICS_ADDR=", "LOG_LEVEL=debug",
	})
	perr, _ := pr.StderrPipe()
	if err := pr.Start(); err != nil {
		t.Fatal(err)
	}
	var stopped atomic.Bool
	t.Cleanup(func() {
		if !stopped.Load() {
			pr.Process.Kill()
			pr.Wait()
		}
	})
	logs := readLines(perr)
	logs.waitLine(t, "baseline taken", 10*time.Second)

	if err := os.WriteFile(conf, []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs.waitLine(t, "content changed", 10*time.Second)
	logs.waitLine(t, "reload delivered", 10*time.Second)
	if got := targetLines.waitLine(t, "hup", 10*time.Second); got != "hup 1" {
		t.Errorf("target printed %q; want %q", got, "hup 1")
	}

	// Rewriting the same bytes is not a change: over many polls and well
	// past SETTLE_TIME, the target gets no second signal.
	if err := os.WriteFile(conf, []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-targetLines.lines:
		t.Errorf("target printed %q after a same-bytes rewrite", l)
	case <-time.After(time.Second):
	}

	// SIGTERM: a clean exit, promptly.
	start := time.Now()
	if err := pr.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := pr.Wait()
	stopped.Store(true)
	if err != nil {
		t.Errorf("pollreload exited with %v after SIGTERM; want exit 0", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("pollreload took %v to exit after SIGTERM; want under 1s", d)
	}
}

// TestWrapperMode starts the target as pollreload's child, as
// `pollreload -- CMD` does, and checks reload, signal forwarding and the
// exit code.
func TestWrapperMode(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pr := program(t, "pollreload", []string{
		"CONFIG_DIR=" + dir, "POLL_INTERVAL=100ms", "SETTLE_TIME=100ms", "METRICS_ADDR=",
	}, "--", "sh", "-c", `BE_TEST_PROGRAM=target exec "$0"`, os.Args[0])
	pout, _ := pr.StdoutPipe()
	perr, _ := pr.StderrPipe()
	if err := pr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Process.Kill(); pr.Wait() })
	out := readLines(pout)
	logs := readLines(perr)
	out.waitLine(t, "ready", 10*time.Second)
	logs.waitLine(t, "baseline taken", 10*time.Second)
	if err := os.WriteFile(conf, []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := out.waitLine(t, "hup", 10*time.Second); got != "hup 1" {
		t.Errorf("child printed %q; want %q", got, "hup 1")
	}
	if err := pr.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs.waitLine(t, "forwarding signal to child", 10*time.Second)
	err := pr.Wait()
	if err != nil {
		t.Errorf("pollreload exited with %v; want 0, the child's exit code after SIGTERM", err)
	}
}

func TestWrapperPassesExitCode(t *testing.T) {
	dir := t.TempDir()
	pr := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "METRICS_ADDR="}, "--", "sh", "-c", "exit 7")
	err := pr.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("pollreload -- sh -c 'exit 7' = %v; want exit code 7", err)
	}
}

func TestHashCommand(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "b.conf"), []byte("bbb"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.conf"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	hash := func() string {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"hash", dir}, nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	first := hash()
	lines := strings.Split(strings.TrimSpace(first), "\n")
	if len(lines) != 3 {
		t.Fatalf("hash printed %d lines; want 3 (root, a.conf, b.conf):\n%s", len(lines), first)
	}
	if want := "  " + dir + "  (plain, 2 files, 4 bytes)"; !strings.HasSuffix(lines[0], want) {
		t.Errorf("first line = %q; want suffix %q", lines[0], want)
	}
	if !strings.HasSuffix(lines[1], "  1  a.conf") || !strings.HasSuffix(lines[2], "  3  b.conf") {
		t.Errorf("file lines = %q, %q; want a.conf then b.conf with sizes", lines[1], lines[2])
	}
	// The digest is stable (seed 0): a fresh process prints the same.
	if again := hash(); again != first {
		t.Errorf("second hash = %q; want %q", again, first)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.conf"), []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed := hash(); strings.Fields(changed)[0] == strings.Fields(first)[0] {
		t.Errorf("digest %s did not change with the content", strings.Fields(first)[0])
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("chk%d", os.Getpid())
	bin := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}

	t.Run("no process", func(t *testing.T) {
		cmd := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=" + name}, "check")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("check = %v; want exit code 1\n%s", err, out)
		}
		for _, want := range []string{dir + ": plain, 1 file, 1 byte", "Problems:", "shareProcessNamespace: true"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("check output lacks %q:\n%s", want, out)
			}
		}
		t.Logf("pollreload check (broken setup):\n%s", out)
	})
	t.Run("good setup", func(t *testing.T) {
		target := exec.Command(bin)
		target.Env = []string{"BE_TEST_PROGRAM=target"}
		tout, _ := target.StdoutPipe()
		if err := target.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { target.Process.Kill(); target.Wait() })
		readLines(tout).waitLine(t, "ready", 10*time.Second)
		cmd := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=" + name}, "check")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("check = %v; want success\n%s", err, out)
		}
		want := fmt.Sprintf("%d", target.Process.Pid)
		if !strings.Contains(string(out), want) || !strings.Contains(string(out), "OK: a change would be delivered.") {
			t.Errorf("check output lacks PID %s or the OK line:\n%s", want, out)
		}
		t.Logf("pollreload check (good setup):\n%s", out)
	})
}

// TestEnvironmentNotOurs runs the real binary in the environment a pod
// gets once a Service named pollreload exists, plus a name a script
// exported, and the spellings users bring from other reloaders (logfmt,
// VERBOSE, a Kubernetes quantity). It must start, reload its child, warn
// once about POLLRELOAD_BIN and never about the service links, and log at
// debug level.
func TestEnvironmentNotOurs(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pr := program(t, "pollreload", []string{
		"CONFIG_DIR=" + dir, "POLL_INTERVAL=100ms", "SETTLE_TIME=100ms", "METRICS_ADDR=",
		"POLLRELOAD_SERVICE_HOST=10.0.0.7", "POLLRELOAD_SERVICE_PORT=9533", "POLLRELOAD_SERVICE_PORT_METRICS=9533",
		"POLLRELOAD_PORT=tcp://10.0.0.7:9533", "POLLRELOAD_PORT_9533_TCP=tcp://10.0.0.7:9533",
		"POLLRELOAD_PORT_9533_TCP_PROTO=tcp", "POLLRELOAD_PORT_9533_TCP_PORT=9533", "POLLRELOAD_PORT_9533_TCP_ADDR=10.0.0.7",
		"POLLRELOAD_BIN=/usr/local/bin/pollreload",
		"LOG_FORMAT=logfmt", "VERBOSE=true", "MAX_FILE_SIZE=1Mi",
	}, "--", "sh", "-c", `BE_TEST_PROGRAM=target exec "$0"`, os.Args[0])
	pout, _ := pr.StdoutPipe()
	var stderr bytes.Buffer
	perrR, perrW := io.Pipe()
	pr.Stderr = io.MultiWriter(&syncWriter{w: &stderr}, perrW)
	if err := pr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Process.Kill(); pr.Wait() })
	out := readLines(pout)
	logs := readLines(perrR)
	out.waitLine(t, "ready", 10*time.Second)
	logs.waitLine(t, "baseline taken", 10*time.Second)
	if err := os.WriteFile(conf, []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := out.waitLine(t, "hup", 10*time.Second); got != "hup 1" {
		t.Errorf("child printed %q; want %q", got, "hup 1")
	}
	if got := logs.waitLine(t, "msg=signalled", 10*time.Second); !strings.Contains(got, "level=DEBUG") {
		t.Errorf("signalled line = %q; want level=DEBUG (VERBOSE=true)", got)
	}
	if err := pr.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := pr.Wait()
	perrW.Close()
	if err != nil {
		t.Errorf("pollreload exited with %v; want 0", err)
	}
	log := stderr.String()
	if n := strings.Count(log, "ignoring unknown variables"); n != 1 {
		t.Errorf("%d warnings about unknown variables; want 1:\n%s", n, log)
	}
	if !strings.Contains(log, "POLLRELOAD_BIN") || strings.Contains(log, "SERVICE_HOST") || strings.Contains(log, "_TCP") {
		t.Errorf("warning should name POLLRELOAD_BIN and no service link:\n%s", log)
	}
}

// syncWriter serialises writes from exec's copying goroutine and the test.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestCommandsUseTheDaemonsHasher runs hash and check through the real
// binary: both build their hasher with the daemon's constructor, so hash
// honours INCLUDE (with a ** glob) and check logs what it skips, as the
// daemon does.
func TestCommandsUseTheDaemonsHasher(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"top.pem": "a", "x/y/deep.pem": "b", "x/y/notes.txt": "c"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("hash honours INCLUDE with **", func(t *testing.T) {
		cmd := program(t, "pollreload", []string{"INCLUDE=**/*.pem"}, "hash", dir)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("hash: %v", err)
		}
		var files []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
			if f := strings.Fields(l); len(f) == 3 && f[0] != "skipped" {
				files = append(files, f[2])
			}
		}
		if got, want := strings.Join(files, ","), "top.pem,x/y/deep.pem"; got != want {
			t.Errorf("hash listed %q; want %q\n%s", got, want, out)
		}
	})
	t.Run("hash refuses a bad glob", func(t *testing.T) {
		cmd := program(t, "pollreload", []string{"POLLRELOAD_EXCLUDE=[a-"}, "hash", dir)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("hash = %v; want exit code 2\n%s", err, out)
		}
		if want := `pollreload: invalid POLLRELOAD_EXCLUDE="[a-": want comma-separated globs such as *.conf, conf.d/* or **/*.pem`; strings.TrimSpace(string(out)) != want {
			t.Errorf("output = %q; want %q", out, want)
		}
	})
	t.Run("check logs skipped entries", func(t *testing.T) {
		if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=nosuch" + fmt.Sprint(os.Getpid())}, "check")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Run()
		if !strings.Contains(stderr.String(), `msg="skipping entry"`) || !strings.Contains(stderr.String(), "pipe") {
			t.Errorf("check's log lacks the skipped FIFO:\n%s", stderr.String())
		}
	})
}
