package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// This file starts the applications of issue 17 from Debian's packages, each
// on 127.0.0.1 with its own configuration in its own directory and free
// ports: Apache httpd, HAProxy in master-worker mode, uWSGI with the python3
// plugin, and PostgreSQL. Each one's configuration carries a value (VALUE)
// the test can read back from the running application.

// App is a running application with the directory its configuration lives
// in (the one pollreload watches).
type App struct {
	*Process
	// ConfDir holds the configuration pollreload watches.
	ConfDir string
	// Conf is the file the test rewrites.
	Conf string
	// Addr is where it answers (host:port), or its socket directory.
	Addr string
	// PIDFile is written by the application itself.
	PIDFile string
	// Extra holds each application's own endpoints (status URL, master CLI
	// socket, stats address, DSN).
	Extra map[string]string

	render func(value string, broken bool) string
}

// Write renders the application's configuration with value; broken adds a
// mistake the application refuses.
func (a *App) Write(t testing.TB, value string, broken bool) {
	t.Helper()
	tmp := a.Conf + ".tmp"
	if err := os.WriteFile(tmp, []byte(a.render(value, broken)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, a.Conf); err != nil {
		t.Fatal(err)
	}
}

// appDir returns a directory every user can enter, owned by uid when it is
// not -1.
func appDir(t testing.TB, uid int) string {
	t.Helper()
	dir := SharedDir(t)
	if uid >= 0 {
		if err := os.Chown(dir, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ApacheConf is an httpd.conf for StartApache: %[1]s the directory, %[2]d
// the port, %[3]s the value served as /missing's 404 page.
const apacheConf = `ServerRoot %[1]s
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule authz_host_module /usr/lib/apache2/modules/mod_authz_host.so
LoadModule status_module /usr/lib/apache2/modules/mod_status.so
ServerName localhost
Listen 127.0.0.1:%[2]d
PidFile %[1]s/run/httpd.pid
ErrorLog %[1]s/run/error.log
DocumentRoot %[1]s/run
%[4]sErrorDocument 404 "%[3]s"
`

const apacheStatus = `<Location "/server-status">
    SetHandler server-status
    Require ip 127.0.0.1
</Location>
`

// StartApache runs apache2 -DFOREGROUND (mpm_event, mod_status) with the
// configuration value. GET /missing answers the value; Extra["status"] is
// the server-status URL.
func StartApache(t testing.TB, value string) *App {
	t.Helper()
	return startApache(t, value, true)
}

// StartApacheNoStatus is StartApache without mod_status's page: nothing
// tells whether a reload took.
func StartApacheNoStatus(t testing.TB, value string) *App {
	t.Helper()
	return startApache(t, value, false)
}

func startApache(t testing.TB, value string, status bool) *App {
	t.Helper()
	bin := RequireTool(t, "apache2", "apache2")
	dir := appDir(t, -1)
	// The pid file and the error log live outside the watched directory.
	root := appDir(t, -1)
	if err := os.Mkdir(filepath.Join(root, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	a := &App{ConfDir: dir, Conf: filepath.Join(dir, "httpd.conf"), Addr: fmt.Sprintf("127.0.0.1:%d", port),
		PIDFile: filepath.Join(root, "run", "httpd.pid")}
	a.Extra = map[string]string{"status": "http://" + a.Addr + "/server-status?auto", "errorlog": filepath.Join(root, "run", "error.log")}
	loc := apacheStatus
	if !status {
		loc, a.Extra["status"] = "", ""
	}
	a.render = func(v string, broken bool) string {
		s := fmt.Sprintf(apacheConf, root, port, v, loc)
		if broken {
			s += "NoSuchDirective on\n"
		}
		return s
	}
	a.Write(t, value, false)
	a.Process = Spawn(t, "apache2", exec.Command(bin, "-d", root, "-f", a.Conf, "-DFOREGROUND"))
	a.waitPIDFile(t)
	return a
}

const haproxyConf = `global
    stats timeout 5s
    hard-stop-after 1s
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend main
    bind %[1]s
    http-request return status 200 content-type text/plain string "%[2]s"
`

// HAProxyConfig writes StartHAProxy's configuration without starting
// haproxy, for a test that starts it another way (pollreload's wrapper).
func HAProxyConfig(t testing.TB, value string) *App {
	t.Helper()
	dir := appDir(t, -1)
	run := t.TempDir()
	a := &App{ConfDir: dir, Conf: filepath.Join(dir, "haproxy.cfg"), Addr: FreeAddr(t),
		PIDFile: filepath.Join(run, "haproxy.pid")}
	a.Extra = map[string]string{"socket": filepath.Join(run, "master.sock")}
	a.render = func(v string, broken bool) string {
		s := fmt.Sprintf(haproxyConf, a.Addr, v)
		if broken {
			s += "    no-such-keyword on\n"
		}
		return s
	}
	a.Write(t, value, false)
	return a
}

// StartHAProxy runs haproxy -W (master-worker) with a master CLI socket
// (-S) and a frontend that answers the value. Extra["socket"] is the
// master CLI.
func StartHAProxy(t testing.TB, value string) *App {
	t.Helper()
	bin := RequireTool(t, "haproxy", "haproxy")
	a := HAProxyConfig(t, value)
	a.Process = Spawn(t, "haproxy", exec.Command(bin, "-W", "-S", a.Extra["socket"], "-f", a.Conf, "-p", a.PIDFile))
	a.waitPIDFile(t)
	WaitFor(t, 30*time.Second, func() error {
		c, err := net.Dial("unix", a.Extra["socket"])
		if err == nil {
			c.Close()
		}
		return err
	})
	return a
}

const uwsgiIni = `[uwsgi]
plugins = python3
master = true
processes = 1
http-socket = %[1]s
stats = %[2]s
chdir = %[3]s
module = %[4]s
env = APP_VALUE=%[5]s
pidfile = %[6]s
die-on-term = true
`

const uwsgiApp = `import os
def application(env, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [os.environ.get('APP_VALUE', '').encode()]
`

// StartUWSGI runs uwsgi (master, one worker, the python3 plugin) with an
// application that answers the value, and a stats server (--stats) at
// Extra["stats"].
func StartUWSGI(t testing.TB, value string) *App {
	t.Helper()
	bin := RequireTool(t, "uwsgi", "uwsgi-plugin-python3")
	if _, err := os.Stat("/usr/lib/uwsgi/plugins/python3_plugin.so"); err != nil {
		RequireTool(t, "uwsgi-python3-plugin", "uwsgi-plugin-python3")
	}
	dir := appDir(t, -1)
	run := t.TempDir()
	if err := os.WriteFile(filepath.Join(run, "hello.py"), []byte(uwsgiApp), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &App{ConfDir: dir, Conf: filepath.Join(dir, "uwsgi.ini"), Addr: FreeAddr(t),
		PIDFile: filepath.Join(run, "uwsgi.pid")}
	a.Extra = map[string]string{"stats": FreeAddr(t)}
	a.render = func(v string, broken bool) string {
		module := "hello:application"
		if broken {
			module = "nosuchmodule:application"
		}
		return fmt.Sprintf(uwsgiIni, a.Addr, a.Extra["stats"], run, module, v, a.PIDFile)
	}
	a.Write(t, value, false)
	a.Process = Spawn(t, "uwsgi", exec.Command(bin, "--ini", a.Conf))
	a.waitPIDFile(t)
	return a
}

// StartPostgres runs PostgreSQL 15 (initdb, then postgres -D) as the
// postgres user, listening on 127.0.0.1 and on a unix socket in its own
// directory (-k), with trust authentication. Its postgresql.conf includes
// ConfDir, whose app.conf sets work_mem to the value. Extra["dsn"] reaches
// it through the socket as the postgres user; Extra["bin"] is the postgres
// binary.
func StartPostgres(t testing.TB, value string) *App {
	t.Helper()
	bin := filepath.Join("/usr/lib/postgresql/15/bin")
	if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
		RequireTool(t, "postgres-15", "postgresql-15")
	}
	setpriv := RequireTool(t, "setpriv", "util-linux")
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skipf("no postgres user: apt-get install -y postgresql-15 (%v)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	asPostgres := func(args ...string) *exec.Cmd {
		return exec.Command(setpriv, append([]string{"--reuid=postgres", "--regid=postgres", "--init-groups", "--"}, args...)...)
	}
	home := appDir(t, uid)
	data, sock := filepath.Join(home, "data"), filepath.Join(home, "sock")
	if out, err := asPostgres(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if out, err := asPostgres("mkdir", sock).CombinedOutput(); err != nil {
		t.Fatalf("mkdir %s: %v\n%s", sock, err, out)
	}
	dir := appDir(t, -1)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "include_dir = '%s'\n", dir)
	f.Close()
	port := FreePort(t)
	a := &App{ConfDir: dir, Conf: filepath.Join(dir, "app.conf"), Addr: sock,
		PIDFile: filepath.Join(data, "postmaster.pid")}
	a.Extra = map[string]string{
		"dsn":  fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", sock, port),
		"bin":  filepath.Join(bin, "postgres"),
		"data": data,
		"port": strconv.Itoa(port),
	}
	a.render = func(v string, broken bool) string {
		if broken {
			return "work_mem = 'lots'\n"
		}
		return fmt.Sprintf("work_mem = '%s'\n", v)
	}
	a.Write(t, value, false)
	a.Process = Spawn(t, "postgres", asPostgres(filepath.Join(bin, "postgres"), "-D", data, "-k", sock,
		"-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"))
	a.waitPIDFile(t)
	// The postmaster PID file is written before it accepts connections.
	WaitFor(t, 30*time.Second, func() error {
		if _, err := os.Stat(filepath.Join(sock, ".s.PGSQL."+strconv.Itoa(port))); err != nil {
			return err
		}
		return nil
	})
	return a
}

// waitPIDFile waits until the application wrote its PID file naming the
// process the test started (haproxy -W: the master).
func (a *App) waitPIDFile(t testing.TB) {
	t.Helper()
	WaitFor(t, 30*time.Second, func() error {
		if a.Exited() {
			t.Fatalf("%s exited at start: %v\n%s", a.Name, a.Wait(0), a.Output())
		}
		b, err := os.ReadFile(a.PIDFile)
		if err != nil {
			return err
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err != nil || pid != a.PID() {
			return fmt.Errorf("%s names pid %d (%v); want %d", a.PIDFile, pid, err, a.PID())
		}
		return nil
	})
}
