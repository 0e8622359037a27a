package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pgbouncerConfig is a minimal pgbouncer.ini: no databases, only the admin
// console on port %[1]d of 127.0.0.1, reachable by the user "admin"
// without a password (the users file %[2]s), max_client_conn = %[3]s, and
// %[4]s for more lines. It sets no logfile: pgbouncer 1.18 resets every
// setting to its default when a reload fails, logfile and admin_users too,
// so a log file named in the ini stops receiving lines just when they
// matter; its stderr, which the test sends to a file, keeps them all.
const pgbouncerConfig = `[databases]

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %[1]d
unix_socket_dir =
auth_type = trust
auth_file = %[2]s
admin_users = admin
max_client_conn = %[3]s
%[4]s
`

// Pgbouncer is a pgbouncer (1.18 in Debian 12) started by a test as user
// nobody, with pgbouncer.ini in Dir (the directory pollreload watches) and
// its log in Log. On SIGHUP it re-reads the ini; a bad value makes it log
// "config file loading failed" and fall back to the defaults.
type Pgbouncer struct {
	Dir     string // the watched directory; holds only pgbouncer.ini
	Config  string // Dir/pgbouncer.ini
	Log     string // pgbouncer's stderr, appended to by the test
	PIDFile string // written by the test: pgbouncer runs in the foreground
	Port    int
	Proc    *Process
	users   string
	psql    string
}

// StartPgbouncer starts pgbouncer with max_client_conn = maxClientConn and
// waits until its admin console shows it.
func StartPgbouncer(t testing.TB, maxClientConn string) *Pgbouncer {
	t.Helper()
	bin := RequireTool(t, "pgbouncer", "pgbouncer")
	p := &Pgbouncer{psql: RequireTool(t, "psql", "postgresql-client"), Port: FreePort(t)}
	// pgbouncer refuses to run as root; as nobody it must still read the
	// directory it is configured from.
	shared := SharedDir(t)
	p.Dir = filepath.Join(shared, "config")
	if err := os.Mkdir(p.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p.Config = filepath.Join(p.Dir, "pgbouncer.ini")
	p.users = filepath.Join(shared, "userlist.txt")
	private := t.TempDir()
	p.Log, p.PIDFile = filepath.Join(private, "pgbouncer.log"), filepath.Join(private, "pgbouncer.pid")
	writeReadable(t, p.users, `"admin" ""`+"\n")
	p.Write(t, maxClientConn, "")
	log, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cmd := exec.Command(bin, "-u", "nobody", p.Config)
	cmd.Stderr = log
	p.Proc = Spawn(t, "pgbouncer", cmd)
	if err := os.WriteFile(p.PIDFile, []byte(strconv.Itoa(p.Proc.PID())), 0o644); err != nil {
		t.Fatal(err)
	}
	p.WaitSetting(t, "max_client_conn", maxClientConn)
	return p
}

// Write rewrites pgbouncer.ini in place.
func (p *Pgbouncer) Write(t testing.TB, maxClientConn, extra string) {
	t.Helper()
	writeReadable(t, p.Config, fmt.Sprintf(pgbouncerConfig, p.Port, p.users, maxClientConn, extra))
}

// Setting returns a setting as the admin console's SHOW CONFIG shows it.
func (p *Pgbouncer) Setting(ctx context.Context, key string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p.psql, "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "admin",
		"-At", "-c", "SHOW CONFIG", "pgbouncer").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql SHOW CONFIG: %w: %s", err, strings.TrimSpace(string(out)))
	}
	// Rows are key|value|default|changeable.
	for line := range strings.Lines(string(out)) {
		if f := strings.Split(strings.TrimSpace(line), "|"); len(f) >= 2 && f[0] == key {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("SHOW CONFIG has no %s:\n%s", key, out)
}

// WaitSetting waits until SHOW CONFIG shows key = want.
func (p *Pgbouncer) WaitSetting(t testing.TB, key, want string) {
	t.Helper()
	WaitFor(t, 30*time.Second, func() error {
		if p.Proc.Exited() {
			t.Fatalf("pgbouncer exited: %v", p.Proc.Wait(0))
		}
		got, err := p.Setting(context.Background(), key)
		if err == nil && got != want {
			err = fmt.Errorf("pgbouncer's %s = %s; want %s", key, got, want)
		}
		return err
	})
}

// writeReadable writes a file that a daemon running as nobody can read,
// whatever the umask.
func writeReadable(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
}
