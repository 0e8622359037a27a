package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// This file holds the regression tests of issue 21's points 11 to 14 and
// 17 to 20 that run the real binary.

// runProgram runs pollreload to its end and returns its exit code, stdout
// and stderr.
func runProgram(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := program(t, "pollreload", env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A bound for a pollreload that started instead of refusing its
	// settings, not a speed requirement.
	kill := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer kill.Stop()
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run pollreload: %v", err)
	}
	return code, out.String(), errb.String()
}

// TestStartRefusesHardenedSettings is issue 21 #11, #12, #17 and #19 (and
// #20's file types): each bad setting stops pollreload at start with exit 2
// and one line naming the variable or flag, and no secret on it.
func TestStartRefusesHardenedSettings(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(t.TempDir(), "token")
	// Sparse: 200 MB that cost no disk, as the token file.
	if err := os.WriteFile(huge, []byte("secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 200<<20); err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-header-value"
	url := "http://127.0.0.1:9/-/reload"
	tests := []struct {
		name   string
		env    []string
		args   []string
		want   string // the whole stderr line
		hidden string // must not appear
	}{
		{"header value with CR LF", []string{"CONFIG_DIR=" + dir, "RELOAD_URL=" + url, "RELOAD_HEADERS=X-Api-Key: a\r\nX-Evil: " + secret}, nil,
			"pollreload: invalid RELOAD_HEADERS: the value of header X-Api-Key holds a carriage return (CR), which HTTP does not allow in a header value (every request would fail); want printable text", secret},
		{"header value with a NUL", []string{"CONFIG_DIR=" + dir, "RELOAD_URL=" + url, "RELOAD_HEADERS=X-Api-Key: " + secret + "\x01"}, nil,
			"pollreload: invalid RELOAD_HEADERS: the value of header X-Api-Key holds the control character U+0001, which HTTP does not allow in a header value (every request would fail); want printable text", secret},
		{"reload-url twice", nil, []string{"--watched-dir=" + dir, "--reload-url=" + url, "--reload-url=http://127.0.0.1:10/-/reload"},
			"pollreload: usage: --reload-url is given 2 times; it takes one value (for several reload endpoints, set RELOAD_URL to a comma-separated list)", ""},
		{"reload-url and webhook-url", nil, []string{"--watched-dir=" + dir, "--reload-url=" + url, "--webhook-url=http://127.0.0.1:10/-/reload"},
			"pollreload: usage: --reload-url and --webhook-url both set RELOAD_URL; give one of them (for several reload endpoints, set RELOAD_URL to a comma-separated list)", ""},
		{"two listen addresses", nil, []string{"--watched-dir=" + dir, "--reload-url=" + url, "--listen-address=:8080", "-web.listen-address", ":9533"},
			"pollreload: usage: --listen-address and -web.listen-address both set METRICS_ADDR; give one of them (for several reload endpoints, set RELOAD_URL to a comma-separated list)", ""},
		{"PID file on procfs", []string{"CONFIG_DIR=" + dir, "PID_FILE=/proc/sys/kernel/ns_last_pid"}, nil,
			`pollreload: invalid PID_FILE="/proc/sys/kernel/ns_last_pid": is on proc, a kernel pseudo-filesystem, so the app cannot have written it; want the file the app writes its PID to, such as /run/nginx.pid`, ""},
		{"PID file on sysfs, not there", []string{"CONFIG_DIR=" + dir, "PID_FILE=/sys/kernel/app.pid"}, nil,
			`pollreload: invalid PID_FILE="/sys/kernel/app.pid": is on sysfs, a kernel pseudo-filesystem, so the app cannot have written it; want the file the app writes its PID to, such as /run/nginx.pid`, ""},
		{"200 MB token file", []string{"CONFIG_DIR=" + dir, "RELOAD_URL=" + url, "RELOAD_BEARER_TOKEN_FILE=" + huge}, nil,
			`pollreload: invalid RELOAD_BEARER_TOKEN_FILE="` + huge + `": 209715200 bytes, over the 1048576-byte (1 MiB) limit of a credential file; want the token, password or PEM file itself`, "secret-token"},
		{"CA file is a directory", []string{"CONFIG_DIR=" + dir, "RELOAD_URL=" + url, "RELOAD_CA_FILE=" + dir}, nil,
			`pollreload: invalid RELOAD_CA_FILE="` + dir + `": want a regular file, not a directory`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runProgram(t, append(tt.env, "METRICS_ADDR="), tt.args...)
			if code != 2 {
				t.Errorf("exit code = %d; want 2\n%s", code, stderr)
			}
			if got := strings.TrimSpace(stderr); got != tt.want {
				t.Errorf("stderr = %q;\nwant     %q", got, tt.want)
			}
			if tt.hidden != "" && strings.Contains(stderr, tt.hidden) {
				t.Errorf("stderr shows the secret %q: %s", tt.hidden, stderr)
			}
		})
	}
}

// TestCheckAndHelpTakeDropInFlags is issue 21 #13: `check` and `--help`
// accept the container's drop-in args, and --reload-method=signal keeps a
// PROCESS_NAME the environment sets.
func TestCheckAndHelpTakeDropInFlags(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()

	t.Run("check with the container's args", func(t *testing.T) {
		code, out, stderr := runProgram(t, nil, "check", "--watched-dir="+dir, "--reload-url="+srv.URL+"/-/reload", "--listen-address=")
		if code != 0 {
			t.Fatalf("check exit code = %d; want 0\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
		}
		for _, want := range []string{dir + ": plain, 1 file, 1 byte", "OK: a change would be delivered."} {
			if !strings.Contains(out, want) {
				t.Errorf("check output lacks %q:\n%s", want, out)
			}
		}
		if hits.Load() != 0 {
			t.Errorf("check called the reload URL %d times; want 0", hits.Load())
		}
	})
	t.Run("check refuses a command", func(t *testing.T) {
		code, _, stderr := runProgram(t, nil, "check", "--watched-dir="+dir, "--", "sleep", "1")
		if code != 2 || !strings.Contains(stderr, "check takes no command") {
			t.Errorf("check -- CMD = exit %d, %q; want exit 2 saying check takes no command", code, stderr)
		}
	})
	t.Run("help among the args", func(t *testing.T) {
		code, out, _ := runProgram(t, nil, "--watched-dir="+dir, "--reload-url="+srv.URL, "--help")
		if code != 0 || !strings.Contains(out, "Drop-in flags of prometheus-config-reloader") {
			t.Errorf("--help after drop-in flags = exit %d; want the help:\n%s", code, out)
		}
	})
	t.Run("signal method keeps the environment's PROCESS_NAME", func(t *testing.T) {
		name := fmt.Sprintf("keep%d", os.Getpid())
		code, out, stderr := runProgram(t, []string{"PROCESS_NAME=" + name}, "check", "--watched-dir="+dir, "--reload-method=signal", "--listen-address=")
		if code != 1 {
			t.Errorf("check exit code = %d; want 1 (no such process)\n%s%s", code, out, stderr)
		}
		if !strings.Contains(out, "Reload target: process "+name+"\n") || !strings.Contains(out, "PROCESS_NAME="+name) {
			t.Errorf("check does not look for PROCESS_NAME %s:\n%s", name, out)
		}
	})
}

// freePort returns a free TCP port on 127.0.0.1.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// scrape returns the value of the metric line that starts with prefix.
func scrape(t *testing.T, addr, prefix string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// TestDuplicateEntriesMerged is issue 21 #14: 3,000 copies of one path
// (spelt alike and with a trailing slash) and a URL given twice watch the
// path once, log one "content changed" line per change and call the URL
// once, with one warning at start. A symlink to the same directory is kept
// as an entry of its own, and said so.
func TestDuplicateEntriesMerged(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	entries := []string{link}
	for i := range 3000 {
		// Relative to pollreload's working directory: 3,000 copies of an
		// absolute temporary path would not fit in one variable (128 KiB).
		if i%2 == 0 {
			entries = append(entries, ".")
		} else {
			entries = append(entries, "./")
		}
	}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	addr := "127.0.0.1:" + freePort(t)
	cmd := program(t, "pollreload", []string{
		"CONFIG_DIR=" + strings.Join(entries, ","), "RELOAD_URL=" + srv.URL + "/a," + srv.URL + "/a",
		"POLL_INTERVAL=100ms", "SETTLE_TIME=0", "METRICS_ADDR=" + addr,
	})
	cmd.Dir = dir
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	waitFor(t, "the baseline", func() error {
		if !strings.Contains(stderr.String(), "baseline taken") {
			return errors.New("no baseline yet")
		}
		return nil
	})
	if v, ok := scrape(t, addr, "pollreload_watched_files"); !ok || v != 2 {
		t.Errorf("watched_files = %v (found %v); want 2: the directory once, and once through the symlink", v, ok)
	}
	if err := os.WriteFile(conf, []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload", func() error {
		if hits.Load() == 0 {
			return errors.New("not called yet")
		}
		return nil
	})
	// Three more scans, so that a second call or line would show.
	scans, _ := scrape(t, addr, `pollreload_scans_total{result="ok"}`)
	waitFor(t, "three more scans", func() error {
		if v, _ := scrape(t, addr, `pollreload_scans_total{result="ok"}`); v < scans+3 {
			return fmt.Errorf("%v scans", v)
		}
		return nil
	})
	logs := stderr.String()
	if n := strings.Count(logs, `msg="content changed"`); n != 2 {
		t.Errorf(`%d "content changed" lines for one change; want 2 (the directory and the symlink entry)`, n)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("RELOAD_URL given twice was called %d times for one change; want 1", n)
	}
	for _, want := range []string{"some entries are given more than once", "CONFIG_DIR=./", "RELOAD_URL=" + srv.URL + "/a", "name the same directory through a symlink"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q", want)
		}
	}
	if n := strings.Count(logs, "CONFIG_DIR=."); n > 1 {
		t.Errorf("the warning names the directory %d times; want each duplicate once", n)
	}
}

// TestDaemonSIGHUPAndBrokenStderr is issue 21 #18 for the daemon: SIGHUP
// is logged and ignored (before, exit 129 with no line), and a stderr whose
// reader went away does not kill pollreload with SIGPIPE: SIGTERM still
// stops it cleanly, exit 0.
func TestDaemonSIGHUPAndBrokenStderr(t *testing.T) {
	dir := t.TempDir()
	cmd := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "RELOAD_URL=http://127.0.0.1:9/", "METRICS_ADDR=", "POLL_INTERVAL=100ms"})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lr := readLines(r)
	lr.waitLine(t, "baseline taken", 10*time.Second)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	lr.waitLine(t, "received SIGHUP; ignoring it", 10*time.Second)
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("pollreload died on SIGHUP: %v", err)
	}
	r.Close() // the log reader goes away
	// The next lines (SIGHUP's, the shutdown's) meet a broken pipe.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); err != nil || code != 0 {
		t.Errorf("pollreload with a broken stderr ended with %v (exit code %d, %v); want exit 0", err, code, cmd.ProcessState)
	}
}

// TestWrapperBrokenStderrKeepsChildStatus is issue 21 #18 for the wrapper:
// once its stderr reader is gone, a forwarded signal's log line meets a
// broken pipe; pollreload must still exit with the child's status (7),
// not die by SIGPIPE (141).
func TestWrapperBrokenStderrKeepsChildStatus(t *testing.T) {
	dir := t.TempDir()
	cmd := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "METRICS_ADDR=", "POLL_INTERVAL=100ms"},
		"--", "/bin/sh", "-c", `trap 'exit 7' USR1; echo started; while :; do sleep 0.05; done`)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	readLines(out).waitLine(t, "started", 10*time.Second)
	readLines(r).waitLine(t, "baseline taken", 10*time.Second)
	r.Close()
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Errorf("wrapper exit = %v (code %d); want the child's 7", cmd.ProcessState, code)
	}
}

// kernelThread returns the PID and name of a kernel thread, if this PID
// namespace shows one.
func kernelThread(t *testing.T) (int, string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		fields := strings.Fields(string(b[i+2:]))
		flags, _ := strconv.ParseUint(fields[6], 10, 64)
		if flags&0x00200000 != 0 {
			return pid, string(b[bytes.IndexByte(b, '(')+1 : i])
		}
	}
	t.Skip("no kernel thread visible in this PID namespace")
	return 0, ""
}

// TestCheckRefusesKernelThreadPIDFile is issue 21 #19: a PID file that
// names a kernel thread selects nothing, and check says why.
func TestCheckRefusesKernelThreadPIDFile(t *testing.T) {
	pid, name := kernelThread(t)
	dir := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runProgram(t, []string{"CONFIG_DIR=" + dir, "PID_FILE=" + pidFile, "METRICS_ADDR="}, "check")
	if code != 1 {
		t.Errorf("check exit code = %d; want 1\n%s%s", code, out, stderr)
	}
	want := fmt.Sprintf("pid %d (%s) is a kernel thread, not an application", pid, name)
	if !strings.Contains(out, want) {
		t.Errorf("check output lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, " yes ") {
		t.Errorf("check selects the kernel thread:\n%s", out)
	}
}

// TestReadyzSaysWhyTheFirstScanFails is issue 21 #20: while the first scan
// fails on a dangling ..data link, /readyz answers 503 with the scan's
// error, which says what ..data is and what is wrong with it.
func TestReadyzSaysWhyTheFirstScanFails(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("..2026_12_04_10_00_00.1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	body := failedScanReadyz(t, "CONFIG_DIR="+dir)
	for _, want := range []string{"no baseline yet:", "..data (kubelet's link to the current version of the volume) names ..2026_12_04_10_00_00.1, which does not exist: a dangling link"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz = %q; want it to contain %q", body, want)
		}
	}
}

// scrapeSum adds up the metric lines that start with prefix (a metric name
// and the start of its labels).
func scrapeSum(t *testing.T, addr, prefix string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// TestDaemonPartialDeliveryCountsSuccess is issue 21 #8 as the issue saw
// it, through the daemon with its default verification: two processes
// match, one catches SIGHUP and one (a renamed sleep) does not. The one
// that took the change counts one verified success while the other keeps
// the reload pending; before, success stayed 0 for as long as the other
// was pending.
func TestDaemonPartialDeliveryCountsSuccess(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("part%d", os.Getpid())
	bin := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	catcher := exec.Command(bin)
	catcher.Env = []string{"BE_TEST_PROGRAM=target"}
	cout, err := catcher.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := catcher.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { catcher.Process.Kill(); catcher.Wait() }()
	hups := readLines(cout)
	hups.waitLine(t, "ready", 10*time.Second)
	sleeper := exec.Command("/bin/sleep", "60")
	sleeper.Args[0] = name
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()

	addr := "127.0.0.1:" + freePort(t)
	cmd := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=" + name, "RELOAD_TARGETS=all",
		"POLL_INTERVAL=100ms", "SETTLE_TIME=0", "METRICS_ADDR=" + addr})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	waitFor(t, "the baseline", func() error {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	if err := os.WriteFile(conf, []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	hups.waitLine(t, "hup 1", 10*time.Second)
	waitFor(t, "a verified success and two refusals", func() error {
		s := scrapeSum(t, addr, `pollreload_reloads_total{result="success"`)
		nc := scrapeSum(t, addr, `pollreload_reloads_total{result="not_catching"`)
		if s < 1 || nc < 2 {
			return fmt.Errorf("success %v, not_catching %v", s, nc)
		}
		return nil
	})
	if s := scrapeSum(t, addr, `pollreload_reloads_total{result="success"`); s != 1 {
		t.Errorf(`reloads_total{result="success"} = %v; want 1`, s)
	}
	if p := scrapeSum(t, addr, "pollreload_reload_pending"); p != 1 {
		t.Errorf("reload_pending = %v; want 1 while the sleeper has not got it", p)
	}
}

// failedScanReadyz starts the daemon with env (a RELOAD_URL, a metrics
// address and a short interval added) on a tree whose first scan fails, and
// returns what /readyz answers once it says the scan failed (503).
func failedScanReadyz(t *testing.T, env ...string) string {
	t.Helper()
	addr := "127.0.0.1:" + freePort(t)
	cmd := program(t, "pollreload", append([]string{"RELOAD_URL=http://127.0.0.1:9/", "METRICS_ADDR=" + addr, "POLL_INTERVAL=100ms"}, env...))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	var body string
	waitFor(t, "a /readyz answer after a failed scan", func() error {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "failed") {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		return nil
	})
	return body
}
