package main

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// These tests hold issue 21's points 7, 9 and 10 for `pollreload check`,
// through the real program, against real servers on 127.0.0.1.

// runCheckProgram runs `pollreload check` with env, bounded so that a hang fails
// the test instead of stalling it, and returns its output and exit code.
func runCheckProgram(t *testing.T, env []string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := program(t, "pollreload", env, "check")
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	cmd.Env = program(t, "pollreload", env).Env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("check did not return within a minute (hung):\n%s", out)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatal(err)
	return "", 0
}

func configDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCheckBoundsSilentVerifyURL (issue 21 point 10): a RELOAD_VERIFY_URL
// that accepts connections and never answers is a problem within
// RELOAD_TIMEOUT, not a hang. On main, check waited forever.
func TestCheckBoundsSilentVerifyURL(t *testing.T) {
	silent := testenv.SilentServer(t)
	out, code := runCheckProgram(t, []string{"CONFIG_DIR=" + configDir(t), "RELOAD_URL=" + silent + "/-/reload",
		"RELOAD_VERIFY_URL=" + silent + "/metrics", "RELOAD_TIMEOUT=2s"})
	if code != 1 || !strings.Contains(out, "no answer: ") || !strings.Contains(out, "RELOAD_VERIFY_URL does not answer") {
		t.Fatalf("check exit code %d; want 1 with RELOAD_VERIFY_URL's missing answer as a problem:\n%s", code, out)
	}
	t.Logf("check on a silent RELOAD_VERIFY_URL:\n%s", out)
}

// TestCheckUsesTheDaemonsTLS (issue 21 point 9): an HTTPS RELOAD_URL whose
// certificate the client rejects fails check, as every reload would; with
// its CA in RELOAD_CA_FILE it passes. No request reaches the endpoint. On
// main, check only opened a TCP connection and said OK.
func TestCheckUsesTheDaemonsTLS(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	dir := configDir(t)
	env := []string{"CONFIG_DIR=" + dir, "RELOAD_URL=" + srv.URL + "/-/reload"}
	out, code := runCheckProgram(t, env)
	if code != 1 || !strings.Contains(out, "certificate signed by unknown authority") || !strings.Contains(out, "cannot be reached as the daemon would") {
		t.Fatalf("check exit code %d on a certificate the client rejects; want 1 naming the certificate:\n%s", code, out)
	}
	t.Logf("untrusted certificate:\n%s", out)

	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runCheckProgram(t, append(env, "RELOAD_CA_FILE="+ca))
	if code != 0 || !strings.Contains(out, "certificate for ") || !strings.Contains(out, "verified; no request sent") {
		t.Fatalf("check exit code %d with the CA in RELOAD_CA_FILE; want 0 and a verified handshake:\n%s", code, out)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("check sent %d requests to the reload endpoint; want none", n)
	}
	t.Logf("trusted with RELOAD_CA_FILE:\n%s", out)
}

// TestVerifyURLErrorPageIsMasked (issue 21 point 7): a RELOAD_VERIFY_URL
// answering 401 with a page that echoes the request shows, in check and in
// the daemon's log, neither the bearer token, nor RELOAD_HEADERS values, nor
// the URL's query values. On main, the excerpt showed all three.
func TestVerifyURLErrorPageIsMasked(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "denied: %s %s Authorization=%q X-Tenant=%q", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("X-Tenant"))
	}))
	defer echo.Close()
	dir := configDir(t)
	env := secretEnv(t, echo.URL, dir, false)
	for i, kv := range env {
		if strings.HasPrefix(kv, "RELOAD_VERIFY_URL=") {
			env[i] = "RELOAD_VERIFY_URL=" + echo.URL + "/metrics?token=" + querySecret
		}
	}
	out, code := runCheckProgram(t, env)
	if code != 1 || !strings.Contains(out, "status 401") || !strings.Contains(out, "denied: GET /metrics?token=xxxxx") {
		t.Fatalf("check exit code %d; want 1 with the 401 page's excerpt:\n%s", code, out)
	}
	assertNoSecret(t, "check output", out)
	t.Logf("check:\n%s", out)

	// The daemon's start-up probe logs the same excerpt.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := program(t, "pollreload", append(env, "METRICS_ADDR="))
	cmd = exec.CommandContext(ctx, cmd.Path)
	cmd.Env = program(t, "pollreload", append(env, "METRICS_ADDR=")).Env
	var log strings.Builder
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return log.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var text string
	for ctx.Err() == nil {
		mu.Lock()
		text = log.String()
		mu.Unlock()
		if strings.Contains(text, "status 401") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(text, "denied: GET /metrics?token=xxxxx") {
		t.Fatalf("the daemon's log lacks the masked excerpt:\n%s", text)
	}
	assertNoSecret(t, "daemon log", text)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
