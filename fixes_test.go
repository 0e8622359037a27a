package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHashFixesFileTooLarge: a file over MAX_FILE_SIZE is named with the
// variable in hash's output and in the fix of the hasher's own log line.
func TestHashFixesFileTooLarge(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), make([]byte, 2000), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POLLRELOAD_MAX_FILE_SIZE", "1KiB") // envconfig reads the process environment
	var out, logs strings.Builder
	err := run(context.Background(), []string{"hash", dir}, os.Environ(), &out, &logs)
	if err == nil {
		t.Fatalf("hash of a tree with a file over the limit succeeded:\n%s", out.String())
	}
	const fact, fix = "2000 bytes, over the size limit of 1024", "POLLRELOAD_MAX_FILE_SIZE=1024; raise it or leave the file out with EXCLUDE"
	if line := "  error (limit)  big: " + fact + " (" + fix + ")\n"; !strings.Contains(out.String(), line) {
		t.Errorf("hash output lacks %q:\n%s", line, out.String())
	}
	if line := `err="` + fact + `" fix="` + fix + `"`; !strings.Contains(logs.String(), line) {
		t.Errorf("log lacks %s:\n%s", line, logs.String())
	}
}

// TestDaemonLogsFix runs the daemon against a target that cannot take
// the signal yet and against a PID file that does not exist yet: the
// reload-pending lines carry the fix, with the variables as given.
func TestDaemonLogsFix(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	daemon := func(t *testing.T, env ...string) *lineReader {
		pr := program(t, "pollreload", append([]string{
			"CONFIG_DIR=" + dir, "POLL_INTERVAL=100ms", "METRICS_ADDR=", "RELOAD_ON_START=true",
		}, env...))
		perr, _ := pr.StderrPipe()
		if err := pr.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pr.Process.Kill(); pr.Wait() })
		return readLines(perr)
	}
	t.Run("not catching", func(t *testing.T) {
		// sleep has no SIGHUP handler: the signal would kill it.
		name := fmt.Sprintf("nc%d", os.Getpid())
		bin := filepath.Join(t.TempDir(), name)
		sleep, err := exec.LookPath("sleep")
		if err != nil {
			t.Skip("needs sleep: apt-get install coreutils")
		}
		if err := os.Symlink(sleep, bin); err != nil {
			t.Fatal(err)
		}
		target := exec.Command(bin, "60")
		if err := target.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { target.Process.Kill(); target.Wait() })
		logs := daemon(t, "PROCESS_NAME="+name, "POLLRELOAD_RELOAD_FORCE=false")
		line := logs.waitLine(t, "reload pending", 10*time.Second)
		want := fmt.Sprintf(`pid=%d name=%s reason=not_catching retry_in=1s err="target does not catch the reload signal: pid %d (%s) has no SIGHUP handler yet and the default action would terminate it" fix="the reload stays pending until it installs one; POLLRELOAD_RELOAD_FORCE=true sends anyway"`,
			target.Process.Pid, name, target.Process.Pid, name)
		if !strings.HasSuffix(line, want) {
			t.Errorf("log line:\n%s\nwant it to end with\n%s", line, want)
		}
	})
	t.Run("permission", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to start processes as uid 65534 and 65533; run the tests as root (CI does)")
		}
		const targetUID, daemonUID = 65534, 65533
		// Both users must be able to run the binary and read CONFIG_DIR.
		shared, err := os.MkdirTemp("", "pollreload-eperm-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(shared) })
		name := fmt.Sprintf("ep%d", os.Getpid())
		bin := filepath.Join(shared, name)
		conf := filepath.Join(shared, "conf")
		copyBinary(t, os.Args[0], bin)
		if err := os.Mkdir(conf, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(conf, "app.conf"), []byte("v1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{shared, conf} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		// A target that catches SIGHUP, as another user: only EPERM stops it.
		target := exec.Command(bin)
		target.Env = []string{"BE_TEST_PROGRAM=target"}
		target.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: targetUID, Gid: targetUID}}
		tout, _ := target.StdoutPipe()
		if err := target.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { target.Process.Kill(); target.Wait() })
		readLines(tout).waitLine(t, "ready", 10*time.Second)

		pr := exec.Command(bin)
		pr.Env = program(t, "pollreload", []string{
			"CONFIG_DIR=" + conf, "POLL_INTERVAL=100ms", "METRICS_ADDR=", "RELOAD_ON_START=true", "PROCESS_NAME=" + name,
		}).Env
		pr.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: daemonUID, Gid: daemonUID}}
		perr, _ := pr.StderrPipe()
		if err := pr.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pr.Process.Kill(); pr.Wait() })
		line := readLines(perr).waitLine(t, "reload pending", 10*time.Second)
		want := fmt.Sprintf(`pid=%d name=%s reason=permission retry_in=1s err="send SIGHUP to pid %[1]d (%[2]s): operation not permitted: pollreload runs as uid %d but the process runs as uid %d" fix="set the sidecar's securityContext runAsUser to %[4]d (the app's UID), or add the CAP_KILL capability"`,
			target.Process.Pid, name, daemonUID, targetUID)
		if !strings.HasSuffix(line, want) {
			t.Errorf("log line:\n%s\nwant it to end with\n%s", line, want)
		}
	})
	t.Run("PID file", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "app.pid")
		logs := daemon(t, "POLLRELOAD_PID_FILE="+pidFile)
		line := logs.waitLine(t, "reload pending", 10*time.Second)
		want := `reason=no_target retry_in=1s err="the PID file ` + pidFile + `: no matching process: it does not exist yet" fix="POLLRELOAD_PID_FILE=` + pidFile + `"`
		if !strings.HasSuffix(line, want) {
			t.Errorf("log line:\n%s\nwant it to end with\n%s", line, want)
		}
	})
}

// TestCheckFixesLimit: check names a root over MAX_FILES once, with the
// fix, and does not call a limit a path or permission problem.
func TestCheckFixesLimit(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// envconfig reads the process environment.
	for k, v := range map[string]string{"CONFIG_DIR": dir, "MAX_FILES": "1", "PROCESS_NAME": "no-such-app-zz", "METRICS_ADDR": ""} {
		t.Setenv(k, v)
	}
	var out strings.Builder
	if err := run(context.Background(), []string{"check"}, os.Environ(), &out, io.Discard); err == nil {
		t.Fatalf("check over MAX_FILES succeeded:\n%s", out.String())
	}
	const advice = "more than 1 regular files (MAX_FILES=1; raise it or narrow INCLUDE/EXCLUDE)"
	for _, want := range []string{
		"\n  " + dir + ": cannot scan: " + advice + "\n",
		"\n  - " + dir + " cannot be scanned: " + advice + "\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestReadyzCarriesTheFix: while the first scan fails on a limit, /readyz
// says why with the fix, as the log line does.
func TestReadyzCarriesTheFix(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	body := failedScanReadyz(t, "CONFIG_DIR="+dir, "POLLRELOAD_MAX_FILES=1")
	if want := "scan " + dir + ": more than 1 regular files (POLLRELOAD_MAX_FILES=1; raise it or narrow INCLUDE/EXCLUDE)"; !strings.Contains(body, want) {
		t.Errorf("/readyz = %q; want it to contain %q", body, want)
	}
}
