package verify

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestLookupProfileAliases(t *testing.T) {
	for name, want := range map[string]string{
		"apache2": "apache", "HTTPD": "apache", "postgres": "postgresql", "mysqld": "mariadb",
		" haproxy ": "haproxy", "uwsgi": "uwsgi", "prometheus": "prometheus",
	} {
		p, ok := LookupProfile(name)
		if !ok || p.Name != want {
			t.Errorf("LookupProfile(%q) = %q, %v; want %q", name, p.Name, ok, want)
		}
	}
	if _, ok := LookupProfile("nosuchapp"); ok {
		t.Errorf("LookupProfile(nosuchapp) found one")
	}
	if p, _ := LookupProfile("haproxy"); p.Signal != syscall.SIGUSR2 {
		t.Errorf("haproxy signal %v; want SIGUSR2", p.Signal)
	}
	if p, _ := LookupProfile("apache"); p.Signal != syscall.SIGUSR1 {
		t.Errorf("apache signal %v; want SIGUSR1", p.Signal)
	}
	if p, _ := LookupProfile("mariadb"); p.Refused == "" {
		t.Errorf("mariadb is not refused")
	}
}

func TestDetectProfile(t *testing.T) {
	for _, c := range []struct {
		exe  string
		args []string
		want string
	}{
		{"/usr/bin/uwsgi-core", []string{"uwsgi"}, "uwsgi"},
		{"/usr/lib/postgresql/15/bin/postgres", []string{"/usr/lib/postgresql/15/bin/postgres"}, "postgresql"},
		{"", []string{"postgres: checkpointer"}, "postgresql"},
		{"/usr/sbin/apache2", []string{"apache2"}, "apache"},
		// gunicorn is a script: python3 runs it, and its path says what it is.
		{"/usr/bin/python3.11", []string{"/usr/bin/python3", "/usr/bin/gunicorn", "-c", "g.conf.py", "app:app"}, "gunicorn"},
		{"/usr/bin/python3.11", []string{"/usr/bin/python3", "-u", "/usr/bin/gunicorn", "app:app"}, "gunicorn"},
		{"/usr/bin/python3.11", []string{"/usr/bin/python3", "/srv/app.py"}, ""},
		{"/usr/bin/python3.11", []string{"/usr/bin/python3", "-m", "http.server"}, ""},
		{"/usr/bin/python3.11", nil, ""},
	} {
		p, ok := DetectProfile(c.exe, c.args)
		if p.Name != c.want || ok != (c.want != "") {
			t.Errorf("DetectProfile(%q, %q) = %q, %v; want %q", c.exe, c.args, p.Name, ok, c.want)
		}
	}
}

func TestCheckCommandFromCmdline(t *testing.T) {
	look := func(string) (string, error) { return "", errors.New("absent") }
	bin := "/bin/true" // exists: the profile's binary is beside pollreload
	for _, c := range []struct {
		app  string
		args []string
		want []string
	}{
		{"haproxy", []string{bin, "-W", "-S", "/run/m.sock", "-f", "/etc/h.cfg", "-f", "/etc/more.cfg"}, []string{bin, "-c", "-q", "-f", "/etc/h.cfg", "-f", "/etc/more.cfg"}},
		{"apache", []string{bin, "-d", "/srv", "-f", "conf/httpd.conf", "-DFOREGROUND"}, []string{bin, "-t", "-d", "/srv", "-f", "conf/httpd.conf"}},
		{"nginx", []string{bin, "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"}, []string{bin, "-t", "-q", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"}},
		{"sshd", []string{bin, "-D", "-f", "/etc/ssh/x"}, []string{bin, "-t", "-f", "/etc/ssh/x"}},
		{"uwsgi", []string{bin, "--ini", "x.ini"}, nil},
		{"haproxy", []string{"haproxy", "-f", "/etc/h.cfg"}, nil}, // not on PATH
		{"nginx", []string{"/nonexistent/nginx"}, nil},
		// Titles written over the arguments: the command line they quote.
		{"nginx", []string{"nginx: master process " + bin + " -p /w -e /w/error.log -c /w/c/nginx.conf -g daemon off; pid /w/n.pid;"},
			[]string{bin, "-t", "-q", "-c", "/w/c/nginx.conf", "-p", "/w", "-e", "/w/error.log", "-g", "daemon off; pid /w/n.pid;"}},
		{"sshd", []string{"sshd: " + bin + " -D -e -f /w/sshd_config [listener] 0 of 10-100 startups"}, []string{bin, "-t", "-f", "/w/sshd_config"}},
		// A script: its interpreter is not the binary to check with.
		{"gunicorn", []string{"/usr/bin/python3", bin, "-c", "/w/g.conf.py", "--chdir", "/srv", "app:app"},
			[]string{bin, "--check-config", "-c", "/w/g.conf.py", "--chdir", "/srv", "app:app"}},
	} {
		p, _ := LookupProfile(c.app)
		if got := p.CheckCommand(c.args, look); !slices.Equal(got, c.want) {
			t.Errorf("%s %q: check %q; want %q", c.app, c.args, got, c.want)
		}
	}
}

func TestSourceFromCmdline(t *testing.T) {
	dir := t.TempDir()
	ini := filepath.Join(dir, "app.ini")
	os.WriteFile(ini, []byte("[uwsgi]\nmaster = true\nstats = 127.0.0.1:9191\n"), 0o644)
	conf := filepath.Join(dir, "httpd.conf")
	os.WriteFile(conf, []byte("Listen 8080\nInclude mods/*.conf\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "mods"), 0o755)
	os.WriteFile(filepath.Join(dir, "mods", "status.conf"), []byte("<Location /status>\n  SetHandler server-status\n</Location>\n"), 0o644)
	for _, c := range []struct {
		app  string
		args []string
		want string // String() of the source; "" means ErrNoEvidence
	}{
		{"haproxy", []string{"haproxy", "-W", "-S", "/run/m.sock,level,admin", "-f", "h.cfg"}, "haproxy master CLI /run/m.sock (show proc: reloads and failed)"},
		{"haproxy", []string{"haproxy", "-W", "-f", "h.cfg"}, ""},
		{"uwsgi", []string{"uwsgi", "--ini", ini}, "uwsgi stats server 127.0.0.1:9191 (new workers with their apps loaded)"},
		{"uwsgi", []string{"uwsgi", "--stats=127.0.0.1:1717"}, "uwsgi stats server 127.0.0.1:1717 (new workers with their apps loaded)"},
		{"uwsgi", []string{"uwsgi", "--http", ":80"}, ""},
		{"apache", []string{"apache2", "-d", dir, "-f", "httpd.conf"}, "apache server-status http://127.0.0.1:8080/status?auto (ParentServerConfigGeneration)"},
		{"apache", []string{"apache2", "-d", t.TempDir()}, ""},
		{"postgresql", []string{"postgres", "-D", "/d", "-k", "/tmp/s", "-p", "5433"}, "postgresql host=/tmp/s port=5433 user=postgres dbname=postgres (pg_conf_load_time() and pg_file_settings.error)"},
	} {
		p, _ := LookupProfile(c.app)
		v, what, err := p.Source(c.args, SourceOptions{})
		switch {
		case c.want == "" && !errors.Is(err, ErrNoEvidence):
			t.Errorf("%s %q: %v, %q; want ErrNoEvidence", c.app, c.args, err, what)
		case c.want != "" && (err != nil || what != c.want || v == nil):
			t.Errorf("%s %q: %q, %v; want %q", c.app, c.args, what, err, c.want)
		}
	}
	// The user's setting wins over the command line.
	p, _ := LookupProfile("haproxy")
	if _, what, err := p.Source([]string{"haproxy", "-f", "h.cfg"}, SourceOptions{Status: "/run/other.sock"}); err != nil || what != "haproxy master CLI /run/other.sock (show proc: reloads and failed)" {
		t.Errorf("RELOAD_APP_STATUS: %q, %v", what, err)
	}
}

func TestParseShowProc(t *testing.T) {
	const out = "#<PID>          <type>          <reloads>       <uptime>        <version>\n" +
		"21064           master          2 [failed: 1]   0d00h00m06s     2.6.12-1+deb12u4\n# workers\n" +
		"21248           worker          1               0d00h00m04s     2.6.12-1+deb12u4\n"
	c, err := parseShowProc(out)
	if err != nil || c != (HAProxyCount{PID: 21064, Reloads: 2, Failed: 1, HasFails: true}) {
		t.Errorf("parseShowProc = %+v, %v", c, err)
	}
	if _, err := parseShowProc("Unknown command\n"); err == nil {
		t.Errorf("a stats socket's answer parsed")
	}
}
