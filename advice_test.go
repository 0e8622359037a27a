package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/signaler"
)

// TestAdviseNoTarget: the libraries say what they found; the main package
// adds the variable as the user spelt it and the pod-spec fix, keeping the
// error chain.
func TestAdviseNoTarget(t *testing.T) {
	p, err := signaler.NewProcess(signaler.ProcessOptions{Names: []string{"no-such-app-zz"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Reload(context.Background(), time.Now())
	cfg := Config{given: map[string]string{"PROCESS_NAME": "POLLRELOAD_PROCESS_NAME"}}
	got := advise(cfg, err)
	want := "no matching process: no process in /proc is named POLLRELOAD_PROCESS_NAME=no-such-app-zz (by comm, argv[0] or executable); if the app runs in another container of the pod, set shareProcessNamespace: true in the pod spec"
	if got.Error() != want {
		t.Errorf("advise = %q; want %q", got, want)
	}
	if !errors.Is(got, signaler.ErrNoTarget) || signaler.ResultOf(got) != signaler.ResultNoTarget {
		t.Errorf("advise lost the chain: %v", got)
	}
}

func TestAdviseTooManyFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := hasher.New(hasher.Options{MaxFiles: 2}).Scan(context.Background(), dir)
	got := advise(Config{}, err)
	want := "scan " + dir + ": more than 2 regular files (MAX_FILES=2; raise it or narrow INCLUDE/EXCLUDE)"
	if got.Error() != want {
		t.Errorf("advise = %q; want %q", got, want)
	}
	if !errors.Is(got, hasher.ErrTooManyFiles) || strings.Count(got.Error(), "scan ") != 1 {
		t.Errorf("advise = %q: want the chain kept and the prefix once", got)
	}
}

// TestAdviseTexts pins, for each structured error of the libraries, the
// full text a user reads: the library's facts, then the variable as given
// and the fix.
func TestAdviseTexts(t *testing.T) {
	given := Config{given: map[string]string{
		"RELOAD_FORCE": "POLLRELOAD_RELOAD_FORCE", "PID_FILE": "POLLRELOAD_PID_FILE", "MAX_FILE_SIZE": "POLLRELOAD_MAX_FILE_SIZE",
	}}
	perm := &signaler.PermissionError{PID: 5, Name: "app", Signal: syscall.SIGHUP, UID: 1, TargetUID: 2, Err: syscall.EPERM}
	tests := []struct {
		name string
		cfg  Config
		err  error
		want string
	}{
		{"permission, target uid known", Config{}, perm,
			"send SIGHUP to pid 5 (app): operation not permitted: pollreload runs as uid 1 but the process runs as uid 2; set the sidecar's securityContext runAsUser to 2 (the app's UID), or add the CAP_KILL capability"},
		{"permission, target uid unknown", Config{}, &signaler.PermissionError{PID: 5, Name: "app", Signal: syscall.SIGHUP, UID: 1, TargetUID: -1, Err: syscall.EPERM},
			"send SIGHUP to pid 5 (app): operation not permitted: pollreload runs as uid 1 but the process runs as an unknown uid; set the sidecar's securityContext runAsUser to the app's UID, or add the CAP_KILL capability"},
		{"no handler", Config{}, &signaler.NotCatchingError{PID: 7, Name: "nginx", Signal: syscall.SIGHUP, Action: "terminate"},
			"target does not catch the reload signal: pid 7 (nginx) has no SIGHUP handler yet and the default action would terminate it; the reload stays pending until it installs one (RELOAD_FORCE=true sends anyway)"},
		{"no handler, stops", given, &signaler.NotCatchingError{PID: 7, Name: "app", Signal: syscall.SIGTSTP, Action: "stop"},
			"target does not catch the reload signal: pid 7 (app) has no SIGTSTP handler yet and the default action would stop it; the reload stays pending until it installs one (POLLRELOAD_RELOAD_FORCE=true sends anyway)"},
		{"ignored", Config{}, &signaler.NotCatchingError{PID: 7, Name: "app", Signal: syscall.SIGUSR1, Ignored: true},
			"target does not catch the reload signal: pid 7 (app) ignores SIGUSR1, so it would not reload; the reload stays pending (RELOAD_FORCE=true sends anyway)"},
		{"PID file", given, &signaler.PIDFileError{Path: "/run/app.pid", Err: fmt.Errorf("%w: it does not exist yet", signaler.ErrNoTarget)},
			"POLLRELOAD_PID_FILE /run/app.pid: no matching process: it does not exist yet"},
		{"file too large", given, &hasher.FileTooLargeError{Max: 1024, Size: 2000},
			"2000 bytes, over the size limit of 1024 (POLLRELOAD_MAX_FILE_SIZE=1024; raise it or leave the file out with EXCLUDE)"},
		{"file grew", Config{}, &hasher.FileTooLargeError{Max: 1024, Size: 0, Grew: true},
			"more than 1024 bytes read, stat said 0: over the size limit (MAX_FILE_SIZE=1024; raise it or leave the file out with EXCLUDE)"},
		{"wrapped: the prefix stays, once", Config{}, fmt.Errorf("check child: %w", perm),
			"check child: send SIGHUP to pid 5 (app): operation not permitted: pollreload runs as uid 1 but the process runs as uid 2; set the sidecar's securityContext runAsUser to 2 (the app's UID), or add the CAP_KILL capability"},
		{"joined: each gets its own", Config{}, errors.Join(perm, &signaler.NotCatchingError{PID: 8, Name: "app", Signal: syscall.SIGHUP, Action: "terminate"}),
			"send SIGHUP to pid 5 (app): operation not permitted: pollreload runs as uid 1 but the process runs as uid 2; set the sidecar's securityContext runAsUser to 2 (the app's UID), or add the CAP_KILL capability\n" +
				"target does not catch the reload signal: pid 8 (app) has no SIGHUP handler yet and the default action would terminate it; the reload stays pending until it installs one (RELOAD_FORCE=true sends anyway)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := advise(tt.cfg, tt.err)
			if got.Error() != tt.want {
				t.Errorf("advise:\ngot  %s\nwant %s", got, tt.want)
			}
			if !errors.Is(got, tt.err) || signaler.ResultOf(got) != signaler.ResultOf(tt.err) || hasher.ErrorKind(got) != hasher.ErrorKind(tt.err) {
				t.Errorf("advise lost the chain of %v", tt.err)
			}
			if again := advise(tt.cfg, got); again.Error() != tt.want {
				t.Errorf("advise applied twice = %q; want it unchanged", again)
			}
		})
	}
	if err := errors.New("plain"); advise(Config{}, err) != err {
		t.Error("advise changed an error it has nothing to add to")
	}
}

// TestHashAdvisesFileTooLarge: a file over MAX_FILE_SIZE is named with the
// variable in hash's output and in the hasher's own log line.
func TestHashAdvisesFileTooLarge(t *testing.T) {
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
	want := "2000 bytes, over the size limit of 1024 (POLLRELOAD_MAX_FILE_SIZE=1024; raise it or leave the file out with EXCLUDE)"
	if line := "  error (limit)  big: " + want + "\n"; !strings.Contains(out.String(), line) {
		t.Errorf("hash output lacks %q:\n%s", line, out.String())
	}
	if line := `err="` + want + `"`; !strings.Contains(logs.String(), line) {
		t.Errorf("log lacks %s:\n%s", line, logs.String())
	}
}

// TestDaemonLogsAdvice runs the daemon against a target that cannot take
// the signal yet and against a PID file that does not exist yet: the
// reload-pending lines carry the advice, with the variables as given.
func TestDaemonLogsAdvice(t *testing.T) {
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
		want := fmt.Sprintf(`pid=%d name=%s reason=not_catching retry_in=1s err="target does not catch the reload signal: pid %d (%s) has no SIGHUP handler yet and the default action would terminate it; the reload stays pending until it installs one (POLLRELOAD_RELOAD_FORCE=true sends anyway)"`,
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
		want := fmt.Sprintf(`pid=%d name=%s reason=permission retry_in=1s err="send SIGHUP to pid %[1]d (%[2]s): operation not permitted: pollreload runs as uid %d but the process runs as uid %d; set the sidecar's securityContext runAsUser to %[4]d (the app's UID), or add the CAP_KILL capability"`,
			target.Process.Pid, name, daemonUID, targetUID)
		if !strings.HasSuffix(line, want) {
			t.Errorf("log line:\n%s\nwant it to end with\n%s", line, want)
		}
	})
	t.Run("PID file", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "app.pid")
		logs := daemon(t, "POLLRELOAD_PID_FILE="+pidFile)
		line := logs.waitLine(t, "reload pending", 10*time.Second)
		want := `reason=no_target retry_in=1s err="POLLRELOAD_PID_FILE ` + pidFile + `: no matching process: it does not exist yet"`
		if !strings.HasSuffix(line, want) {
			t.Errorf("log line:\n%s\nwant it to end with\n%s", line, want)
		}
	})
}

// TestCheckAdvisesLimit: check names a root over MAX_FILES once, with the
// advice, and does not call a limit a path or permission problem.
func TestCheckAdvisesLimit(t *testing.T) {
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
