package verify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pollreload/pollreload/internal/testenv"
	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// reloadWith prepares src, signals the app and returns the check's verdict.
func reloadWith(t *testing.T, app *testenv.App, src verify.Verifier, sig syscall.Signal) error {
	t.Helper()
	ctx := t.Context()
	src.Before(ctx)
	at := time.Now()
	if err := app.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return src.After(ctx, verify.Delivery{At: at, Targets: []signaler.Target{{PID: app.PID(), Name: app.Name}}})
}

func wantAccepted(t *testing.T, step string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: verdict %v; want accepted", step, err)
	}
}

func wantRejected(t *testing.T, step string, err error, says string) {
	t.Helper()
	var rej *signaler.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("%s: verdict %v; want a *RejectedError", step, err)
	}
	if !strings.Contains(rej.Error(), says) {
		t.Errorf("%s: rejection %q; want it to say %q", step, rej.Error(), says)
	}
	t.Logf("%s: %v", step, err)
}

// answers returns the body of GET url.
func answers(url string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 && resp.StatusCode != 404 {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(b)), err
}

func waitAnswer(t *testing.T, url, want string) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, func() error {
		got, err := answers(url)
		if err == nil && got != want {
			err = fmt.Errorf("GET %s = %q; want %q", url, got, want)
		}
		return err
	})
}

// TestHAProxyMasterCLI reloads a real haproxy -W by USR2: a valid change is
// accepted by the master's reload count, a config it cannot load is
// rejected by its failed count while the old worker still answers, and the
// fix is accepted.
func TestHAProxyMasterCLI(t *testing.T) {
	t.Parallel()
	app := testenv.StartHAProxy(t, "one")
	url := "http://" + app.Addr + "/"
	waitAnswer(t, url, "one")
	src, err := verify.NewHAProxyMaster(verify.HAProxyOptions{Socket: app.Extra["socket"]})
	if err != nil {
		t.Fatal(err)
	}
	app.Write(t, "two", false)
	wantAccepted(t, "valid", reloadWith(t, app, src, syscall.SIGUSR2))
	waitAnswer(t, url, "two")
	app.Write(t, "three", true)
	wantRejected(t, "invalid", reloadWith(t, app, src, syscall.SIGUSR2), "failed: 1")
	waitAnswer(t, url, "two")
	app.Write(t, "four", false)
	wantAccepted(t, "fix", reloadWith(t, app, src, syscall.SIGUSR2))
	waitAnswer(t, url, "four")
}

// TestUWSGIStats reloads a real uwsgi by HUP: new workers with the app are
// accepted; new workers without one (module = nosuchmodule) are rejected.
func TestUWSGIStats(t *testing.T) {
	t.Parallel()
	app := testenv.StartUWSGI(t, "one")
	url := "http://" + app.Addr + "/"
	waitAnswer(t, url, "one")
	src, err := verify.NewUWSGIStats(verify.UWSGIOptions{Addr: app.Extra["stats"], Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	app.Write(t, "two", false)
	wantAccepted(t, "valid", reloadWith(t, app, src, syscall.SIGHUP))
	waitAnswer(t, url, "two")
	app.Write(t, "three", true)
	wantRejected(t, "invalid", reloadWith(t, app, src, syscall.SIGHUP), "no application loaded")
	app.Write(t, "four", false)
	wantAccepted(t, "fix", reloadWith(t, app, src, syscall.SIGHUP))
	waitAnswer(t, url, "four")
}

// TestApacheStatus reloads a real apache2 by USR1 (graceful): the
// generation moves; a config with an unknown directive makes apache exit,
// which is what the check command is for.
func TestApacheStatus(t *testing.T) {
	t.Parallel()
	app := testenv.StartApache(t, "one")
	url := "http://" + app.Addr + "/missing"
	waitAnswer(t, url, "one")
	src, err := verify.NewApacheStatus(verify.ApacheOptions{URL: app.Extra["status"]})
	if err != nil {
		t.Fatal(err)
	}
	before, err := src.Generation(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	app.Write(t, "two", false)
	wantAccepted(t, "valid", reloadWith(t, app, src, syscall.SIGUSR1))
	waitAnswer(t, url, "two")
	after, _ := src.Generation(t.Context())
	if after <= before {
		t.Errorf("ParentServerConfigGeneration %d -> %d; want it to move", before, after)
	}
	app.Write(t, "three", true)
	err = reloadWith(t, app, src, syscall.SIGUSR1)
	if err == nil {
		t.Fatalf("invalid: verdict accepted; want not accepted")
	}
	if werr := app.Wait(10 * time.Second); werr == nil && !app.Exited() {
		t.Fatalf("apache still runs after a broken config: %v", werr)
	}
	t.Logf("invalid: apache exited (%v); the status source said: %v", app.Wait(0), err)
}

// TestPostgresSQL reloads a real PostgreSQL by HUP through its unix
// socket: a valid work_mem is accepted and read back, 'lots' is rejected
// with pg_file_settings' error although pg_conf_load_time() moved, and the
// fix is accepted.
func TestPostgresSQL(t *testing.T) {
	t.Parallel()
	app := testenv.StartPostgres(t, "4MB")
	src, err := verify.NewPostgresSQL(verify.PostgresOptions{DSN: app.Extra["dsn"]})
	if err != nil {
		t.Fatal(err)
	}
	if s := src.String(); strings.Contains(s, "password") {
		t.Errorf("String() = %q", s)
	}
	show := func() string {
		conn, err := pgx.Connect(t.Context(), app.Extra["dsn"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var v string
		if err := conn.QueryRow(t.Context(), "SHOW work_mem").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	app.Write(t, "8MB", false)
	wantAccepted(t, "valid", reloadWith(t, app, src, syscall.SIGHUP))
	if got := show(); got != "8MB" {
		t.Errorf("work_mem = %s; want 8MB", got)
	}
	app.Write(t, "", true)
	wantRejected(t, "invalid", reloadWith(t, app, src, syscall.SIGHUP), "work_mem")
	if got := show(); got != "8MB" {
		t.Errorf("work_mem after the refused value = %s; want 8MB still", got)
	}
	app.Write(t, "16MB", false)
	wantAccepted(t, "fix", reloadWith(t, app, src, syscall.SIGHUP))
	if got := show(); got != "16MB" {
		t.Errorf("work_mem = %s; want 16MB", got)
	}
}
