package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gunicornApp is a WSGI application that answers with the GREETING its
// worker was started with: gunicorn's raw_env setting puts it in the
// environment of every new worker, so the answer says which configuration
// the serving worker was started from.
const gunicornApp = `import os


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [os.environ.get("GREETING", "unset").encode() + b"\n"]
`

// gunicornConfig is a gunicorn.conf.py: port %[1]d on 127.0.0.1, two
// workers, GREETING=%[2]s for them, the PID file %[3]s, and %[4]s for
// more lines (one gunicorn refuses, say).
const gunicornConfig = `bind = "127.0.0.1:%[1]d"
workers = 2
raw_env = ["GREETING=%[2]s"]
pidfile = %[3]q
%[4]s
`

// Gunicorn is a gunicorn master (the arbiter) and its two workers, started
// by a test on 127.0.0.1 with gunicorn.conf.py alone in Dir, the
// directory pollreload watches. On SIGHUP the arbiter re-reads the file
// and replaces its workers; a file it cannot load makes it exit.
type Gunicorn struct {
	Dir     string // the watched directory; holds only gunicorn.conf.py
	Config  string // Dir/gunicorn.conf.py
	PIDFile string // written by gunicorn
	URL     string
	Port    int
	Bin     string
	Proc    *Process
	appDir  string
}

// StartGunicorn starts gunicorn in the foreground with greeting as the
// workers' GREETING and waits until it serves it.
func StartGunicorn(t testing.TB, greeting string) *Gunicorn {
	t.Helper()
	bin := RequireTool(t, "gunicorn", "gunicorn")
	g := &Gunicorn{Dir: filepath.Join(t.TempDir(), "config"), appDir: t.TempDir(), Port: FreePort(t), Bin: bin}
	g.Config = filepath.Join(g.Dir, "gunicorn.conf.py")
	g.PIDFile = filepath.Join(g.appDir, "gunicorn.pid")
	g.URL = fmt.Sprintf("http://127.0.0.1:%d/", g.Port)
	if err := os.Mkdir(g.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(g.appDir, "app.py"), []byte(gunicornApp), 0o644); err != nil {
		t.Fatal(err)
	}
	g.Write(t, greeting, "")
	cmd := exec.Command(bin, g.Args()...)
	// Without it gunicorn writes gunicorn.conf.py's bytecode into Dir's
	// __pycache__ on each reload, a change pollreload would see (users
	// set it, or EXCLUDE=**/__pycache__/**; docs/verification.md says so).
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	g.Proc = Spawn(t, "gunicorn", cmd)
	g.WaitServes(t, greeting)
	return g
}

// Args are gunicorn's arguments after its name.
func (g *Gunicorn) Args() []string {
	return []string{"-c", g.Config, "--chdir", g.appDir, "app:app"}
}

// CheckCommand validates the configuration without starting a server:
// gunicorn --check-config with the server's own arguments.
func (g *Gunicorn) CheckCommand() string {
	return g.Bin + " --check-config " + strings.Join(g.Args(), " ")
}

// Write rewrites gunicorn.conf.py in place.
func (g *Gunicorn) Write(t testing.TB, greeting, extra string) {
	t.Helper()
	if err := os.WriteFile(g.Config, []byte(fmt.Sprintf(gunicornConfig, g.Port, greeting, g.PIDFile, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Get returns the body the server answers with.
func (g *Gunicorn) Get(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.URL, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", g.URL, resp.Status)
	}
	return strings.TrimSpace(string(b)), err
}

// WaitServes waits until every answer is greeting: two answers in a row,
// as two workers serve.
func (g *Gunicorn) WaitServes(t testing.TB, greeting string) {
	t.Helper()
	WaitFor(t, 30*time.Second, func() error {
		if g.Proc.Exited() {
			t.Fatalf("gunicorn exited: %v", g.Proc.Wait(0))
		}
		for range 2 {
			got, err := g.Get(context.Background())
			if err != nil {
				return err
			}
			if got != greeting {
				return fmt.Errorf("gunicorn answers %q; want %q", got, greeting)
			}
		}
		return nil
	})
}
