package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	got := cfg.Explain(err)
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
	got := Config{}.Explain(err)
	want := "scan " + dir + ": more than 2 regular files (MAX_FILES=2; raise it or narrow INCLUDE/EXCLUDE)"
	if got != want {
		t.Errorf("explain = %q; want %q", got, want)
	}
	if e := (Config{}).Explained(err); !errors.Is(e, hasher.ErrTooManyFiles) || e.Error() != want {
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
			if got := tt.cfg.Fix(tt.err); got != tt.fix {
				t.Errorf("fix:\ngot  %s\nwant %s", got, tt.fix)
			}
			want := tt.err.Error()
			if tt.fix != "" {
				want += " (" + tt.fix + ")"
			}
			if got := tt.cfg.Explain(tt.err); got != want {
				t.Errorf("explain:\ngot  %s\nwant %s", got, want)
			}
			e := tt.cfg.Explained(tt.err)
			if !errors.Is(e, tt.err) || e.Error() != want {
				t.Errorf("explained = %q: want %q with the chain kept", e, want)
			}
			if again := tt.cfg.Explained(fmt.Errorf("start: %w", e)); again.Error() != "start: "+want {
				t.Errorf("explained twice = %q; want the fix once", again)
			}
		})
	}
}

// TestFixHandler: the log handler adds a fix attribute to a record whose
// err has one, in text and JSON, through With and groups, and leaves
// other records alone.
func TestFixHandler(t *testing.T) {
	cfg := Config{given: map[string]string{"MAX_DEPTH": "POLLRELOAD_MAX_DEPTH"}}
	err := fmt.Errorf("scan /d: %w", &hasher.TooDeepError{Max: 3})
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var b strings.Builder
			var h slog.Handler = slog.NewTextHandler(&b, nil)
			if format == "json" {
				h = slog.NewJSONHandler(&b, nil)
			}
			logger := slog.New(cfg.LogHandler(h))
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
