package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Secrets every test below hands pollreload; none may come back out.
const (
	tokenSecret  = "tok-3f9a1c"
	headerSecret = "hdr-77b2e0"
	urlSecret    = "url-a61d4c"
	querySecret  = "qry-5e0b9f"
)

// appServer is an application on 127.0.0.1 with reload metrics (unless
// prefix is empty) and a reload endpoint that refuses with an error page
// echoing what it was sent, credentials included.
func appServer(t *testing.T, prefix string) (url string, hits func() int) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if prefix != "" {
		ok := prometheus.NewGauge(prometheus.GaugeOpts{Name: prefix + "_config_last_reload_successful", Help: "ok"})
		ts := prometheus.NewGauge(prometheus.GaugeOpts{Name: prefix + "_config_last_reload_success_timestamp_seconds", Help: "ts"})
		reg.MustRegister(ok, ts)
		ok.Set(1)
		ts.SetToCurrentTime()
	}
	var mu sync.Mutex
	n := 0
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "config refused; you sent %s %s, Authorization %q, X-Tenant %q", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("X-Tenant"))
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// secretEnv returns the environment of a setup that uses every kind of
// secret: a token file, a header, a lone-user token in the URL, a query
// token.
// With userinfo the URL carries a lone-user token (sent as basic auth);
// without, a bearer token file is used: pollreload refuses both at once.
func secretEnv(t *testing.T, app, dir string, userinfo bool) []string {
	t.Helper()
	env := []string{"CONFIG_DIR=" + dir, "RELOAD_VERIFY_URL=" + app + "/metrics",
		"RELOAD_HEADERS=X-Tenant: " + headerSecret, "RELOAD_TIMEOUT=2s"}
	if userinfo {
		reload := strings.Replace(app, "http://", "http://"+urlSecret+"@", 1) + "/-/reload?token=" + querySecret
		return append(env, "RELOAD_URL="+reload)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tokenSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return append(env, "RELOAD_URL="+app+"/-/reload?token="+querySecret, "RELOAD_BEARER_TOKEN_FILE="+tokenFile)
}

func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{tokenSecret, headerSecret, urlSecret, querySecret} {
		if strings.Contains(text, s) {
			t.Errorf("%s reveals secret %q:\n%s", what, s, text)
		}
	}
}

func TestCheckShowsVerification(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("URL credentials and a token file", func(t *testing.T) {
		app, _ := appServer(t, "myapp")
		env := append(secretEnv(t, app, dir, true), "RELOAD_BEARER_TOKEN_FILE=/dev/null")
		out, err := program(t, "pollreload", env, "check").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "RELOAD_URL carries credentials") {
			t.Fatalf("check = %v; want exit code 2 for two sets of credentials\n%s", err, out)
		}
		assertNoSecret(t, "error", string(out))
	})
	t.Run("metric found", func(t *testing.T) {
		app, hits := appServer(t, "myapp")
		out, err := program(t, "pollreload", secretEnv(t, app, dir, false), "check").CombinedOutput()
		if err != nil {
			t.Fatalf("check = %v; want success\n%s", err, out)
		}
		for _, want := range []string{
			"Reload target: URL 127.0.0.1:",
			"/-/reload?token=xxxxx",
			"auth: bearer token from ",
			"headers X-Tenant (values hidden)",
			"verify: RELOAD_VERIFY_URL " + app + "/metrics",
			"answered; verifies by myapp_config_last_reload_success_timestamp_seconds (last success 20",
			"and myapp_config_last_reload_successful = 1",
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("check output lacks %q:\n%s", want, out)
			}
		}
		assertNoSecret(t, "check output", string(out))
		if n := hits(); n != 0 {
			t.Errorf("check sent %d reload requests; want none", n)
		}
		t.Logf("pollreload check:\n%s", out)
	})
	t.Run("no reload metric", func(t *testing.T) {
		app, _ := appServer(t, "")
		out, err := program(t, "pollreload", secretEnv(t, app, dir, true), "check").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("check = %v; want exit code 1\n%s", err, out)
		}
		if want := "no metric name ends in _config_last_reload_success_timestamp_seconds"; !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
		assertNoSecret(t, "check output", string(out))
	})
	t.Run("daemon refuses to start without the metric", func(t *testing.T) {
		app, _ := appServer(t, "")
		out, err := program(t, "pollreload", secretEnv(t, app, dir, false)).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "no reload metric at the verification URL") || !strings.Contains(string(out), "set RELOAD_VERIFY_METRIC") {
			t.Fatalf("daemon = %v; want exit code 2 naming the missing metric\n%s", err, out)
		}
		assertNoSecret(t, "error", string(out))
	})
}

// TestRejectedReloadKeepsSecrets runs the daemon against an app that
// refuses the reload with an error page echoing the credentials: the
// rejection is logged and counted, and no secret reaches the log or the
// metrics.
func TestRejectedReloadKeepsSecrets(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	app, hits := appServer(t, "myapp")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env := append(secretEnv(t, app, dir, true), "METRICS_ADDR="+addr, "POLL_INTERVAL=100ms", "SETTLE_TIME=0", "LOG_LEVEL=debug")
	cmd := program(t, "pollreload", env)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitUntil(t, func() bool { return strings.Contains(logs.String(), "baseline taken") })
	if err := os.WriteFile(conf, []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return strings.Contains(logs.String(), "rejected") })
	metrics := ""
	waitUntil(t, func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		metrics = string(b)
		return strings.Contains(metrics, `pollreload_reloads_total{result="rejected",target="127.0.0.1:`) && strings.Contains(metrics, `/-/reload"} 1`)
	})
	if !strings.Contains(logs.String(), `you sent POST /-/reload?token=xxxxx, Authorization \"Basic xxxxx\", X-Tenant \"xxxxx\"`) {
		t.Errorf("log lacks the app's answer with the secrets masked:\n%s", logs.String())
	}
	assertNoSecret(t, "log", logs.String())
	assertNoSecret(t, "metrics", metrics)
	if hits() < 1 {
		t.Errorf("the app saw no reload request")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
