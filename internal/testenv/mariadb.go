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

// mariadbConfig is a my.cnf with one setting a test can read back.
const mariadbConfig = "[mysqld]\nmax_connections = %d\n"

// MariaDB is a mariadbd (MariaDB 10.11 in Debian 12) started by a test on
// 127.0.0.1 with a fresh data directory and my.cnf alone in Dir, the
// directory pollreload watches. SIGHUP makes mariadbd flush its logs and
// print its status; it never re-reads my.cnf.
type MariaDB struct {
	Dir     string // the watched directory; holds only my.cnf
	Config  string // Dir/my.cnf
	PIDFile string // written by mariadbd
	Socket  string
	Port    int
	Proc    *Process
	client  string
}

// StartMariaDB creates a data directory with mariadb-install-db, starts
// mariadbd on it with max_connections from my.cnf, and waits until it
// answers on its socket.
func StartMariaDB(t testing.TB, maxConnections int) *MariaDB {
	t.Helper()
	bin := RequireTool(t, "mariadbd", "mariadb-server")
	install := RequireTool(t, "mariadb-install-db", "mariadb-server")
	m := &MariaDB{client: RequireTool(t, "mariadb", "mariadb-client"), Dir: filepath.Join(t.TempDir(), "config"), Port: FreePort(t)}
	private := t.TempDir()
	data := filepath.Join(private, "data")
	m.Config, m.PIDFile, m.Socket = filepath.Join(m.Dir, "my.cnf"), filepath.Join(private, "mariadbd.pid"), filepath.Join(private, "mysqld.sock")
	if err := os.Mkdir(m.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m.Write(t, maxConnections)
	user := "--user=" + currentUser()
	if out, err := exec.Command(install, "--no-defaults", "--datadir="+data, user, "--skip-test-db", "--auth-root-authentication-method=normal").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m.Proc = Spawn(t, "mariadbd", exec.Command(bin, "--defaults-file="+m.Config, "--datadir="+data,
		"--socket="+m.Socket, "--port="+strconv.Itoa(m.Port), "--bind-address=127.0.0.1",
		"--pid-file="+m.PIDFile, user, "--skip-grant-tables", "--log-error="+filepath.Join(private, "error.log")))
	m.Proc.Grace = 30 * time.Second // InnoDB's shutdown
	WaitFor(t, 60*time.Second, func() error {
		if m.Proc.Exited() {
			b, _ := os.ReadFile(filepath.Join(private, "error.log"))
			t.Fatalf("mariadbd exited: %v\n%s", m.Proc.Wait(0), b)
		}
		if _, err := ReadPIDFile(m.PIDFile); err != nil {
			return err
		}
		_, err := m.MaxConnections(context.Background())
		return err
	})
	return m
}

// Write rewrites my.cnf in place.
func (m *MariaDB) Write(t testing.TB, maxConnections int) {
	t.Helper()
	if err := os.WriteFile(m.Config, []byte(fmt.Sprintf(mariadbConfig, maxConnections)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// MaxConnections returns SELECT @@max_connections, the value mariadbd runs
// with.
func (m *MariaDB) MaxConnections(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, m.client, "--no-defaults", "--socket="+m.Socket, "-N", "-e", "SELECT @@max_connections").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("mariadb SELECT @@max_connections: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

// currentUser is the name mariadbd must be told to run as: it refuses
// root unless named, and cannot switch users when not root.
func currentUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return strconv.Itoa(os.Geteuid())
}
