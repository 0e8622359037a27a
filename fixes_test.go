package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// TestFixNoTarget: the libraries say what they found; the main package
// adds, where the error is shown, the variable as the user spelt it and
// the pod-spec fix.
func TestFixNoTarget(t *testing.T) {
	p, err := signaler.NewProcess(signaler.ProcessOptions{Names: []string{"no-such-app-zz"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Reload(context.Background(), time.Now())
	cfg := Config{given: map[string]string{"PROCESS_NAME": "POLLRELOAD_PROCESS_NAME"}}
	got := cfg.explain(err)
	want := "no matching process: no process in /proc is named no-such-app-zz (by comm, argv[0] or executable) (POLLRELOAD_PROCESS_NAME=no-such-app-zz; if the app runs in another container of the pod, set shareProcessNamespace: true in the pod spec)"
	if got != want {
		t.Errorf("explain = %q; want %q", got, want)
	}
}

func TestFixTooManyFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := hasher.New(hasher.Options{MaxFiles: 2}).Scan(context.Background(), dir)
	got := Config{}.explain(err)
	want := "scan " + dir + ": more than 2 regular files (MAX_FILES=2; raise it or narrow INCLUDE/EXCLUDE)"
	if got != want {
		t.Errorf("explain = %q; want %q", got, want)
	}
	if e := (Config{}).explained(err); !errors.Is(e, hasher.ErrTooManyFiles) || e.Error() != want {
		t.Errorf("explained = %q: want the chain kept and the text %q", e, want)
	}
}

// TestFixTexts pins, for each structured error of the libraries, the fix
// a user reads beside it: the variable as given, or the pod-spec field,
// and what to do. The error's own text (the library's facts) is left as
// it is; explain prints the fix after it.
func TestFixTexts(t *testing.T) {
	given := Config{given: map[string]string{
		"RELOAD_FORCE": "POLLRELOAD_RELOAD_FORCE", "PID_FILE": "POLLRELOAD_PID_FILE", "MAX_FILE_SIZE": "POLLRELOAD_MAX_FILE_SIZE",
	}}
	perm := &signaler.PermissionError{PID: 5, Name: "app", Signal: syscall.SIGHUP, UID: 1, TargetUID: 2, Err: syscall.EPERM}
	const permFix = "set the sidecar's securityContext runAsUser to 2 (the app's UID), or add the CAP_KILL capability"
	tests := []struct {
		name string
		cfg  Config
		err  error
		fix  string
	}{
		{"permission, target uid known", Config{}, perm, permFix},
		{"permission, target uid unknown", Config{}, &signaler.PermissionError{PID: 5, Name: "app", Signal: syscall.SIGHUP, UID: 1, TargetUID: -1, Err: syscall.EPERM},
			"set the sidecar's securityContext runAsUser to the app's UID, or add the CAP_KILL capability"},
		{"no handler", Config{}, &signaler.NotCatchingError{PID: 7, Name: "nginx", Signal: syscall.SIGHUP, Action: "terminate"},
			"the reload stays pending until it installs one; RELOAD_FORCE=true sends anyway"},
		{"no handler, stops", given, &signaler.NotCatchingError{PID: 7, Name: "app", Signal: syscall.SIGTSTP, Action: "stop"},
			"the reload stays pending until it installs one; POLLRELOAD_RELOAD_FORCE=true sends anyway"},
		{"ignored", Config{}, &signaler.NotCatchingError{PID: 7, Name: "app", Signal: syscall.SIGUSR1, Ignored: true},
			"the reload stays pending; RELOAD_FORCE=true sends anyway"},
		{"PID file", given, &signaler.PIDFileError{Path: "/run/app.pid", Err: fmt.Errorf("%w: it does not exist yet", signaler.ErrNoTarget)},
			"POLLRELOAD_PID_FILE=/run/app.pid"},
		{"only PID 1", Config{}, &signaler.NoTargetError{Names: []string{"app"}, ProcDir: "/proc", PID1: true},
			"PROCESS_NAME=app; run the app under pollreload's wrapper mode (pollreload -- CMD) or in its own container with shareProcessNamespace: true in the pod spec"},
		{"file too large", given, &hasher.FileTooLargeError{Max: 1024, Size: 2000},
			"POLLRELOAD_MAX_FILE_SIZE=1024; raise it or leave the file out with EXCLUDE"},
		{"file grew", Config{}, &hasher.FileTooLargeError{Max: 1024, Size: 0, Grew: true},
			"MAX_FILE_SIZE=1024; raise it or leave the file out with EXCLUDE"},
		{"too deep", Config{}, &hasher.TooDeepError{Max: 3}, "MAX_DEPTH=3; raise it or leave the directory out with EXCLUDE"},
		{"total", Config{}, &hasher.TotalTooLargeError{Max: 10}, "MAX_TOTAL_SIZE=10; raise it or narrow INCLUDE/EXCLUDE"},
		{"wrapped", Config{}, fmt.Errorf("check child: %w", perm), permFix},
		{"joined: each fix once, in order", Config{}, errors.Join(perm, &signaler.NotCatchingError{PID: 8, Name: "app", Signal: syscall.SIGHUP, Action: "terminate"}, perm),
			permFix + "; the reload stays pending until it installs one; RELOAD_FORCE=true sends anyway"},
		{"several %w", Config{}, fmt.Errorf("a: %w, b: %w", errors.New("plain"), &hasher.TooDeepError{Max: 3}),
			"MAX_DEPTH=3; raise it or leave the directory out with EXCLUDE"},
		{"credential file at a request", given, fmt.Errorf("reload POST http://h/r: %w", &signaler.SecretFileError{Field: "CAFile", Path: "/ca.pem", Err: errors.New("want a readable file")}),
			"RELOAD_CA_FILE=/ca.pem"},
		{"no answer in time", Config{}, fmt.Errorf("reload POST http://h/r: %w", &signaler.TimeoutError{Timeout: 5 * time.Second, Err: context.DeadlineExceeded}),
			"RELOAD_TIMEOUT=5s; raise it if the application takes longer to answer"},
		{"nothing to add", Config{}, errors.New("plain"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.fix(tt.err); got != tt.fix {
				t.Errorf("fix:\ngot  %s\nwant %s", got, tt.fix)
			}
			want := tt.err.Error()
			if tt.fix != "" {
				want += " (" + tt.fix + ")"
			}
			if got := tt.cfg.explain(tt.err); got != want {
				t.Errorf("explain:\ngot  %s\nwant %s", got, want)
			}
			e := tt.cfg.explained(tt.err)
			if !errors.Is(e, tt.err) || e.Error() != want {
				t.Errorf("explained = %q: want %q with the chain kept", e, want)
			}
			if again := tt.cfg.explained(fmt.Errorf("start: %w", e)); again.Error() != "start: "+want {
				t.Errorf("explained twice = %q; want the fix once", again)
			}
		})
	}
}

// TestFixHandler: the log handler adds a fix attribute to a record whose
// err has one, in text and JSON, through With and groups, and leaves
// other records alone.
func TestFixHandler(t *testing.T) {
	cfg := Config{given: map[string]string{"MAX_DEPTH": "POLLRELOAD_MAX_DEPTH"}, LogLevel: "info"}
	err := fmt.Errorf("scan /d: %w", &hasher.TooDeepError{Max: 3})
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			cfg.LogFormat = format
			var b strings.Builder
			logger := newLogger(cfg, &b)
			logger.Warn("cannot scan", "err", err)
			logger.With("dir", "/d").WithGroup("g").Warn("again", "err", err)
			logger.Warn("plain", "err", errors.New("plain"))
			logger.Info("no error", "n", 1)
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if len(lines) != 4 {
				t.Fatalf("log:\n%s\nwant 4 lines", b.String())
			}
			want := `fix="POLLRELOAD_MAX_DEPTH=3; raise it or leave the directory out with EXCLUDE"`
			if format == "json" {
				want = `"fix":"POLLRELOAD_MAX_DEPTH=3; raise it or leave the directory out with EXCLUDE"`
			}
			for i, l := range lines {
				if has := strings.Contains(l, want); has != (i < 2) {
					t.Errorf("line %d: %s\nholds %s: %v; want %v", i, l, want, has, i < 2)
				}
				if strings.Contains(l, "fix") && i >= 2 {
					t.Errorf("line %d has a fix: %s", i, l)
				}
			}
		})
	}
}

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
	addr := "127.0.0.1:" + freePort(t)
	cmd := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "RELOAD_URL=http://127.0.0.1:9/", "METRICS_ADDR=" + addr, "POLL_INTERVAL=100ms", "POLLRELOAD_MAX_FILES=1"})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
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
	if want := "scan " + dir + ": more than 1 regular files (POLLRELOAD_MAX_FILES=1; raise it or narrow INCLUDE/EXCLUDE)"; !strings.Contains(body, want) {
		t.Errorf("/readyz = %q; want it to contain %q", body, want)
	}
}
