package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// pgbouncerIni is a minimal pgbouncer configuration: no databases, only the
// admin console, reachable by the user "admin" without a password.
const pgbouncerIni = `[databases]

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
admin_users = admin
max_client_conn = %d
`

// TestPgbouncerReloadsFromPlainDirectory runs pgbouncer (the seeds'
// example) with its ini in an ordinary directory that is rewritten in
// place. After pollreload's SIGHUP the admin console shows the new
// max_client_conn, from the same process: a reload, not a restart.
func TestPgbouncerReloadsFromPlainDirectory(t *testing.T) {
	t.Parallel()
	pgbouncer := testenv.RequireTool(t, "pgbouncer", "pgbouncer")
	psql := testenv.RequireTool(t, "psql", "postgresql-client")
	// pgbouncer refuses to run as root; as nobody it must still read the
	// directory it is configured from.
	dir := testenv.SharedDir(t)
	port := testenv.FreePort(t)
	users := filepath.Join(dir, "userlist.txt")
	ini := filepath.Join(dir, "pgbouncer.ini")
	writeWorldReadable(t, users, `"admin" ""`+"\n")
	writeWorldReadable(t, ini, fmt.Sprintf(pgbouncerIni, port, users, 100))

	// Its stderr also goes to a file, the log pollreload reads its verdict
	// from: pgbouncer tells how a reload went only there.
	logPath := filepath.Join(t.TempDir(), "pgbouncer.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	cmd := exec.Command(pgbouncer, "-u", "nobody", ini)
	cmd.Stderr = logFile
	bouncer := testenv.Spawn(t, "pgbouncer", cmd)
	showConfig := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, psql, "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "admin",
			"-At", "-c", "SHOW CONFIG", "pgbouncer").CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("psql SHOW CONFIG: %w: %s", err, out)
		}
		// Rows are key|value|default|changeable.
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Split(line, "|"); len(f) >= 2 && f[0] == "max_client_conn" {
				return f[1], nil
			}
		}
		return "", fmt.Errorf("SHOW CONFIG has no max_client_conn:\n%s", out)
	}
	waitMaxClientConn := func(want string) {
		t.Helper()
		testenv.WaitFor(t, deliveryTimeout, func() error {
			if bouncer.Exited() {
				t.Fatalf("pgbouncer exited: %v", bouncer.Wait(0))
			}
			got, err := showConfig()
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("max_client_conn = %s; want %s", got, want)
			}
			return nil
		})
	}
	waitMaxClientConn("100")
	_, _, started, err := procStat(bouncer.PID())
	if err != nil {
		t.Fatal(err)
	}

	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":                dir,
		"PROCESS_NAME":              "pgbouncer",
		"RELOAD_VERIFY_LOG":         logPath,
		"RELOAD_VERIFY_LOG_SUCCESS": "got SIGHUP, re-reading config",
		"RELOAD_VERIFY_LOG_FAILURE": "config file loading failed",
		"POLL_INTERVAL":             "100ms",
		"SETTLE_TIME":               "300ms",
		"LOG_LEVEL":                 "debug",
	})
	// Rewritten in place (truncate, write), as `cat > file` or a config
	// management tool does: the settle time covers the moment in between.
	writeWorldReadable(t, ini, fmt.Sprintf(pgbouncerIni, port, users, 123))
	waitMaxClientConn("123")

	_, _, nowStarted, err := procStat(bouncer.PID())
	if err != nil || nowStarted != started || bouncer.Exited() {
		t.Errorf("pgbouncer %d start time %d -> %d (err %v); want the same process", bouncer.PID(), started, nowStarted, err)
	}
	if !strings.Contains(bouncer.Output(), "got SIGHUP, re-reading config") {
		t.Errorf("pgbouncer did not log its SIGHUP reload")
	}
	waitVerifiedReloads(t, pr, 1)
	t.Logf("pgbouncer: pid %d reloaded max_client_conn 100 -> 123 without restart", bouncer.PID())
}

// writeWorldReadable writes a file that a daemon running as nobody can read.
func writeWorldReadable(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
}
