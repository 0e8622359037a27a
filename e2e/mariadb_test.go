package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// TestMariaDBIsRefused: mariadbd never re-reads my.cnf on a signal (SIGHUP
// only flushes; TestMariaDBDoesNotReadMyCnfOnSIGHUP in internal/testenv
// shows it), so a "reload" would be counted for a change never applied.
// pollreload refuses it: at start (exit 2, by PID_FILE and by
// PROCESS_NAME), in check (exit 2), and, for a mariadbd that appears after
// pollreload started, at the delivery: nothing is sent, the result is
// "error", and the server never gets the signal.
//
// Not parallel: pollreload selects by name here, and must not find
// another test's server.
func TestMariaDBIsRefused(t *testing.T) {
	m := testenv.StartMariaDB(t, 100)
	errLog := filepath.Join(filepath.Dir(m.PIDFile), "error.log")
	statusDumps := func() int { // mariadbd writes one per SIGHUP
		b, _ := os.ReadFile(errLog)
		return strings.Count(string(b), "Status information:")
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"start by PID_FILE", map[string]string{"CONFIG_DIR": m.Dir, "PID_FILE": m.PIDFile}, nil},
		{"start by PROCESS_NAME", map[string]string{"CONFIG_DIR": m.Dir, "PROCESS_NAME": "mariadbd"}, nil},
		{"check", map[string]string{"CONFIG_DIR": m.Dir, "PID_FILE": m.PIDFile}, []string{"check"}},
	} {
		res := testenv.Run(t, 60*time.Second, tc.env, tc.args...)
		// The reason (no signal reloads it) and what to do instead (a
		// restart, or SET GLOBAL), whether the mariadb profile or the
		// executable check says it first.
		if res.ExitCode != 2 || !strings.Contains(res.Stderr, "re-read") ||
			!strings.Contains(res.Stderr, "restart") || !strings.Contains(res.Stderr, "SET GLOBAL") {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant exit 2 with the reason and what to do instead", tc.name, res.ExitCode, res.Stderr)
		}
		t.Logf("%s: exit %d: %s", tc.name, res.ExitCode, strings.TrimSpace(res.Stderr))
	}

	// A server that appears after pollreload started: refused when it is to
	// be signalled.
	late := filepath.Join(t.TempDir(), "late.pid")
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":    m.Dir,
		"PID_FILE":      late,
		"POLL_INTERVAL": "100ms",
		"SETTLE_TIME":   "200ms",
	})
	b, err := os.ReadFile(m.PIDFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(late, b, 0o644); err != nil {
		t.Fatal(err)
	}
	before := statusDumps()
	m.Write(t, 123)
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "error"}, 1)
	if got := reloadsBy(t, pr, "success"); got != 0 {
		t.Errorf("success = %v; want 0", got)
	}
	if n := deliveredReloads(pr); n != 0 {
		t.Errorf("%d reloads delivered; want none", n)
	}
	lines := logLines(pr, "never re-read my.cnf")
	if len(lines) == 0 {
		t.Errorf("no log line gives the reason:\n%s", pr.Output())
	}
	waitScans(t, pr, 10)
	if n := statusDumps(); n != before {
		t.Errorf("mariadbd wrote %d status dumps (one per SIGHUP) after the change; want none", n-before)
	}
	got, err := m.MaxConnections(t.Context())
	if err != nil || got != 100 {
		t.Errorf("max_connections = %d (%v); want 100, what mariadbd started with", got, err)
	}
	t.Logf("late target: %s; %s", reloadState(t, pr), lines[0])
}
