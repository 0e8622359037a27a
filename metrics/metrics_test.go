package metrics_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollreload/pollreload/internal/testenv"
	"github.com/pollreload/pollreload/metrics"
	"github.com/pollreload/pollreload/signaler"
)

type health struct{ healthy, ready error }

func (h health) Healthy() error { return h.healthy }
func (h health) Ready() error   { return h.ready }

// serve starts the handler on 127.0.0.1 and returns its base URL.
func serve(t *testing.T, h metrics.Health) (string, *metrics.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "1.2.3", Revision: "abc"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: metrics.Handler(reg, h)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), m
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestMetricsEndpoint(t *testing.T) {
	base, m := serve(t, health{})
	m.Reload("app", signaler.ResultSuccess)
	m.ObserveScan(metrics.Scan{Duration: 2 * time.Millisecond, Err: true})
	m.ScanError("stale")
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d; want 200", code)
	}
	for _, want := range []string{
		`pollreload_scans_total{result="ok"} 0`,
		`pollreload_scans_total{result="partial"} 0`,
		`pollreload_reloads_total{result="success",target="app"} 1`,
		`pollreload_reloads_total{result="no_target",target="app"} 0`,
		`pollreload_scan_errors_total{kind="stale"} 1`,
		`pollreload_changes_total 0`,
		`pollreload_bytes_hashed_total 0`,
		`pollreload_missed_scans_total 0`,
		`pollreload_scan_duration_seconds_count 1`,
		`pollreload_reload_latency_seconds_count 0`,
		`pollreload_watched_files 0`,
		`pollreload_watched_bytes 0`,
		`pollreload_reload_pending 0`,
		`pollreload_last_reload_success_timestamp_seconds 0`,
		`pollreload_poll_interval_seconds 0`,
		`pollreload_configured_poll_interval_seconds 0`,
		`pollreload_build_info{goversion="go`,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(body, `revision="abc",version="1.2.3"} 1`) {
		t.Errorf("/metrics lacks the build_info labels:\n%s", grep(body, "build_info"))
	}
}

func TestMetricsPassPromtool(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool", "prometheus")
	base, m := serve(t, health{})
	m.Reload("app", signaler.ResultSuccess)
	_, body := get(t, base+"/metrics")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
	if s := strings.TrimSpace(out.String()); s != "" {
		t.Errorf("promtool check metrics printed findings:\n%s", s)
	}
}

func TestProbes(t *testing.T) {
	tests := []struct {
		name     string
		h        health
		path     string
		wantCode int
		wantBody string
	}{
		{"healthy", health{}, "/healthz", 200, "ok\n"},
		{"unhealthy", health{healthy: errors.New("scan running for 9s")}, "/healthz", 503, "scan running for 9s\n"},
		{"ready", health{}, "/readyz", 200, "ok\n"},
		{"not ready", health{ready: errors.New("waiting for the first scan")}, "/readyz", 503, "waiting for the first scan\n"},
		{"no pprof", health{}, "/debug/pprof/", 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, _ := serve(t, tt.h)
			code, body := get(t, base+tt.path)
			if code != tt.wantCode || body != tt.wantBody {
				t.Errorf("GET %s = %d %q; want %d %q", tt.path, code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestWatchedBytesIsCoarse checks that the unauthenticated metrics port does
// not tell a Secret's exact length: sizes are rounded up to 4 KiB.
func TestWatchedBytesIsCoarse(t *testing.T) {
	for _, tt := range []struct{ bytes, want int64 }{
		{0, 0}, {6, 4096}, {4096, 4096}, {4097, 8192}, {1 << 20, 1 << 20},
	} {
		base, m := serve(t, health{})
		m.ObserveScan(metrics.Scan{Files: 1, Bytes: tt.bytes})
		_, body := get(t, base+"/metrics")
		want := fmt.Sprintf("pollreload_watched_bytes %d\n", tt.want)
		if tt.want >= 1<<20 {
			want = fmt.Sprintf("pollreload_watched_bytes %g\n", float64(tt.want))
		}
		if !strings.Contains(body, want) {
			t.Errorf("%d bytes watched: /metrics has %q; want %q", tt.bytes, grep(body, "pollreload_watched_bytes "), want)
		}
	}
}

// TestLastReloadSuccessful checks the gauge's convention: 1 at start and
// after a delivery, 0 after a refused or failed attempt, unchanged by waits
// for a target.
func TestLastReloadSuccessful(t *testing.T) {
	base, m := serve(t, health{})
	steps := []struct {
		r    signaler.Result
		want string
	}{
		{signaler.ResultNoTarget, "1"},
		{signaler.ResultPermission, "0"},
		{signaler.ResultNotCatching, "0"},
		{signaler.ResultSuccess, "1"},
		{signaler.ResultRejected, "0"},
		{signaler.ResultUpToDate, "1"},
		{signaler.ResultTargetDied, "0"},
		{signaler.ResultError, "0"},
	}
	for _, s := range steps {
		m.Reload("app", s.r)
		_, body := get(t, base+"/metrics")
		if want := "pollreload_last_reload_successful " + s.want + "\n"; !strings.Contains(body, want) {
			t.Errorf("after %s: %q; want %q", s.r, grep(body, "last_reload_successful "), want)
		}
	}
	_, body := get(t, base+"/metrics")
	for _, r := range signaler.Results() {
		if !strings.Contains(body, `pollreload_reloads_total{result="`+r.String()+`",target="app"}`) {
			t.Errorf("/metrics lacks reloads_total for %s", r)
		}
	}
}

// TestLastReloadSuccessfulTwoTargets: one target's success does not hide
// another's rejection; the gauge reads 1 again once the rejected one took a
// change.
func TestLastReloadSuccessfulTwoTargets(t *testing.T) {
	base, m := serve(t, health{})
	m.AddTargets("prometheus", "hooks.example/reload")
	steps := []struct {
		target string
		r      signaler.Result
		want   string
	}{
		{"prometheus", signaler.ResultRejected, "0"},
		{"hooks.example/reload", signaler.ResultSuccess, "0"},
		{"hooks.example/reload", signaler.ResultError, "0"},
		{"prometheus", signaler.ResultSuccess, "0"},
		{"hooks.example/reload", signaler.ResultSuccess, "1"},
	}
	for i, s := range steps {
		m.Reload(s.target, s.r)
		_, body := get(t, base+"/metrics")
		if want := "pollreload_last_reload_successful " + s.want + "\n"; !strings.Contains(body, want) {
			t.Errorf("step %d (%s %s): %q; want %q", i, s.target, s.r, grep(body, "last_reload_successful "), want)
		}
	}
	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		`pollreload_reloads_total{result="rejected",target="prometheus"} 1`,
		`pollreload_reloads_total{result="success",target="hooks.example/reload"} 2`,
		`pollreload_reloads_total{result="target_died",target="hooks.example/reload"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grep(body, "reloads_total"))
		}
	}
}
