package verify

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// pgbouncer 1.18's lines, as TestPgbouncerLogsAFailedLoadAndFallsBackToDefaults
// (internal/testenv) records them.
const (
	pgbHUP    = "2026-12-04 15:36:35.458 UTC [13518] LOG got SIGHUP, re-reading config\n"
	pgbBad    = "2026-12-04 15:36:35.459 UTC [13518] ERROR invalid value \"notanumber\" for parameter max_client_conn in configuration (pgbouncer.ini:11)\n"
	pgbFailed = "2026-12-04 15:36:35.459 UTC [13518] WARNING config file loading failed\n"
)

func newLog(t *testing.T, path string) *LogVerifier {
	t.Helper()
	return newLogTimeout(t, path, 2*time.Second)
}

func newLogTimeout(t *testing.T, path string, timeout time.Duration) *LogVerifier {
	t.Helper()
	l, err := NewLogVerifier(LogOptions{Path: path, Timeout: timeout, Interval: 20 * time.Millisecond,
		Success: regexp.MustCompile(`got SIGHUP, re-reading config`), Failure: regexp.MustCompile(`config file loading failed`)})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// TestLogVerifier: each way a log can read after a delivery, on a real file.
func TestLogVerifier(t *testing.T) {
	tests := []struct {
		name string
		// before is in the file at Before; setup changes the path after
		// Before and before After; during is appended while After looks.
		before string
		setup  func(t *testing.T, path string)
		during string
		want   string // "accepted", "rejected" or "unknown"
		// timeout is the verifier's; zero means 2s.
		timeout time.Duration
		answer  string // in the rejection's answer or the unknown error
	}{
		{name: "success line", before: pgbFailed, setup: func(t *testing.T, p string) { appendTo(t, p, pgbHUP) }, want: "accepted"},
		{name: "failure line", setup: func(t *testing.T, p string) { appendTo(t, p, pgbHUP+pgbBad+pgbFailed) },
			want: "rejected", answer: "WARNING config file loading failed"},
		{name: "nothing yet", before: pgbHUP, want: "unknown", answer: "no line of"},
		{name: "rotated", before: pgbFailed, setup: func(t *testing.T, p string) {
			if err := os.Rename(p, p+".1"); err != nil {
				t.Fatal(err)
			}
			appendTo(t, p, pgbHUP)
		}, want: "accepted"},
		{name: "truncated", before: strings.Repeat("old line\n", 100) + pgbFailed, setup: func(t *testing.T, p string) {
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
			appendTo(t, p, pgbHUP)
		}, want: "accepted"},
		{name: "missing at Before, written later", setup: func(t *testing.T, p string) { os.Remove(p) },
			during: pgbFailed, want: "rejected", answer: "WARNING config file loading failed"},
		{name: "more than one look's bound", setup: func(t *testing.T, p string) {
			appendTo(t, p, strings.Repeat(strings.Repeat("x", 99)+"\n", 2*logReadMax/100)+pgbFailed)
		}, timeout: 30 * time.Second, want: "rejected", answer: "WARNING config file loading failed"},
		{name: "a line longer than the bound", setup: func(t *testing.T, p string) {
			appendTo(t, p, strings.Repeat("y", 3*logLineMax)+"\n"+pgbHUP)
		}, want: "accepted"},
		{name: "credentials in the line are masked", setup: func(t *testing.T, p string) {
			appendTo(t, p, "config file loading failed: cannot reach postgres://admin:s3cret@db:5432/x?password=hunter22\n")
		}, want: "rejected", answer: "config file loading failed: cannot reach postgres://xxxxx:xxxxx@db:5432/x?password=xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			appendTo(t, path, tt.before)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			l := newLogTimeout(t, path, timeout)
			l.Before(t.Context())
			at := time.Now()
			if tt.setup != nil {
				tt.setup(t, path)
			}
			done := make(chan error, 1)
			go func() { done <- l.After(t.Context(), Delivery{At: at}) }()
			if tt.during != "" {
				time.Sleep(50 * time.Millisecond) // let After look once first
				appendTo(t, path, tt.during)
			}
			err := <-done
			got, text := "accepted", ""
			var rej *signaler.RejectedError
			switch {
			case errors.As(err, &rej):
				got, text = "rejected", rej.Answer
			case err != nil:
				got, text = "unknown", err.Error()
			}
			if got != tt.want || !strings.Contains(text, tt.answer) {
				t.Errorf("After = %s %q; want %s %q", got, text, tt.want, tt.answer)
			}
			if rej != nil && strings.Contains(rej.Answer, "s3cret") {
				t.Errorf("the answer shows the password: %q", rej.Answer)
			}
		})
	}
}

// TestLogVerifierConfirmsASuccessLine: an application may log that it
// reloads before it logs what went wrong; a success line counts only when
// the next look finds no failure line. The looks are made one by one here.
func TestLogVerifierConfirmsASuccessLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path, "")
	l := newLog(t, path)
	l.Before(t.Context())
	appendTo(t, path, pgbHUP+"WARNING config file lo")
	if err := l.look(); err != nil || l.success == "" {
		t.Fatalf("first look = %v, success %q; want the success line kept, unconfirmed", err, l.success)
	}
	appendTo(t, path, "ading failed\n")
	err := l.look()
	var rej *signaler.RejectedError
	if !errors.As(err, &rej) || rej.Answer != "WARNING config file loading failed" {
		t.Fatalf("second look = %v; want the failure line, completed across two writes, as a rejection", err)
	}
}

// TestLogVerifierNeverBlocksOnAFIFO: a FIFO at the log's path, with no
// writer, is refused at once; opening it for reading would block forever.
func TestLogVerifierNeverBlocksOnAFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	l := newLog(t, path)
	l.Before(t.Context())
	err := l.After(t.Context(), Delivery{At: time.Now()})
	if err == nil || errors.Is(err, signaler.ErrRejected) || !strings.Contains(err.Error(), "is a FIFO (named pipe), not a regular file") {
		t.Fatalf("After on a FIFO = %v; want an error naming the FIFO", err)
	}
	t.Log(err)
}

// TestLogVerifierGoesOnAfterAnUnknownVerdict: called again after "not yet",
// After reads on from where it stopped, so the verdict written late counts.
func TestLogVerifierGoesOnAfterAnUnknownVerdict(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path, pgbFailed)
	l := newLog(t, path)
	l.Before(t.Context())
	d := Delivery{At: time.Now().Add(-time.Hour)} // long past its timeout
	if err := l.After(t.Context(), d); err == nil || errors.Is(err, signaler.ErrRejected) {
		t.Fatalf("first After = %v; want an unknown verdict (the old failure line is before the delivery)", err)
	}
	appendTo(t, path, pgbHUP)
	if err := l.After(t.Context(), d); err != nil {
		t.Fatalf("second After = %v; want accepted", err)
	}
}
