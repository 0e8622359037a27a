package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pollreload/pollreload/internal/testenv"
	"github.com/pollreload/pollreload/signaler"
)

// TestAliveVerifier signals two real processes: one that handles SIGHUP and
// one whose handler exits, as an app crashing on a bad config does.
func TestAliveVerifier(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		wantDied bool
	}{
		{"survives", `trap 'echo hup >> "$1"' HUP; echo ready > "$1"; while :; do sleep 0.05; done`, false},
		{"dies", `trap 'exit 3' HUP; echo ready > "$1"; while :; do sleep 0.05; done`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startShell(t, tt.script)
			p, err := signaler.NewProcess(signaler.ProcessOptions{PIDFile: h.pidFile(t)})
			if err != nil {
				t.Fatal(err)
			}
			out, err := Deliver(t.Context(), p, NewAliveVerifier(AliveOptions{Grace: 300 * time.Millisecond}), time.Now())
			var died *signaler.TargetDiedError
			switch {
			case !tt.wantDied && err != nil:
				t.Fatalf("Reload: %v", err)
			case tt.wantDied && !errors.As(err, &died):
				t.Fatalf("Reload = %v; want a *signaler.TargetDiedError", err)
			case tt.wantDied:
				if died.PID != h.PID() || signaler.Reason(err) != "target_died" || !strings.Contains(err.Error(), fmt.Sprintf("pid %d (", h.PID())) || !strings.Contains(err.Error(), "of SIGHUP") {
					t.Errorf("error %q (reason %s); want pid %d, its name and SIGHUP, reason target_died", err, signaler.Reason(err), h.PID())
				}
				t.Logf("died: %v", err)
			}
			if len(out.Signalled) != 1 || out.Signalled[0].PID != h.PID() {
				t.Errorf("Signalled = %+v; want pid %d", out.Signalled, h.PID())
			}
		})
	}
}

// masterScript is a tiny master/worker server: it keeps one worker (a
// sleep) and on SIGHUP replaces it only if the file $2 says "good", as nginx
// replaces its workers only for a configuration that loads.
const masterScript = `trap 'read m < "$2"; if [ "$m" = good ]; then kill $w; sleep 1000 & w=$!; fi' HUP
trap 'kill $w; exit 0' TERM
sleep 1000 & w=$!
echo ready > "$1"
while :; do wait; done`

func TestChildrenVerifier(t *testing.T) {
	mode := filepath.Join(t.TempDir(), "mode")
	h := startShell(t, masterScript, mode)
	t.Cleanup(h.stop) // before Spawn's SIGKILL: the master takes its worker along
	p, err := signaler.NewProcess(signaler.ProcessOptions{PIDFile: h.pidFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	cv := NewChildrenVerifier(ChildrenOptions{Timeout: time.Second})
	workers := func() []int {
		w, err := cv.Children(h.PID())
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for i, step := range []struct{ mode, want string }{{"good", "success"}, {"bad", "rejected"}, {"good", "success"}} {
		if err := os.WriteFile(mode, []byte(step.mode+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		before := workers()
		_, err := Deliver(t.Context(), p, cv, time.Now())
		after := workers()
		if got := signaler.Reason(err); got != step.want {
			t.Fatalf("step %d (%s config): Reload = %v (%s); want %s", i, step.mode, err, got, step.want)
		}
		t.Logf("step %d, %s config: %s, workers %v -> %v, err %v", i, step.mode, step.want, before, after, err)
		if step.want == "rejected" && !strings.Contains(err.Error(), fmt.Sprintf("no new generation of workers replaced the old ones %v", before)) {
			t.Errorf("error %q does not name the old workers %v", err, before)
		}
	}
}

// TestChildrenVerifierNeedsChildren: a target without workers cannot be
// verified this way: the error says what the option is for, and the
// delivery counts unverified (not retried).
func TestChildrenVerifierNeedsChildren(t *testing.T) {
	// A lone process has at most a short-lived sleep child; use one with
	// none at all: a shell blocked in the read builtin.
	h := startShell(t, `trap 'echo hup >> "$1"' HUP; echo ready > "$1"; read x`)
	c := NewChildrenVerifier(ChildrenOptions{Timeout: 200 * time.Millisecond})
	c.Before(t.Context())
	err := c.After(t.Context(), Delivery{At: time.Now(), Targets: []signaler.Target{{PID: h.PID(), Name: "app"}}})
	if !errors.Is(err, ErrChildrenUnfit) || !strings.Contains(err.Error(), "had no children before SIGHUP") || signaler.Reason(err) != "unverified" {
		t.Fatalf("After = %v; want an error saying the target has no children", err)
	}
}

// fakeApp is an application on 127.0.0.1 in the way Prometheus and
// Alertmanager are: POST /-/reload loads the config file (valid when it
// says "valid") and updates its reload metrics, served at /metrics in
// OpenMetrics or text as the scraper asks.
type fakeApp struct {
	url        string
	configFile string
	mu         sync.Mutex
	accepts    []string // Accept headers of scrapes
	types      []string // Content-Type of the answers
	updates    bool     // false: reloads do nothing (a lost signal)
}

func newFakeApp(t *testing.T, prefix string, extra ...string) *fakeApp {
	t.Helper()
	a := &fakeApp{configFile: filepath.Join(t.TempDir(), "app.yml"), updates: true}
	reg := prometheus.NewRegistry()
	ok := prometheus.NewGauge(prometheus.GaugeOpts{Name: prefix + "_config_last_reload_successful", Help: "Whether the last reload succeeded."})
	ts := prometheus.NewGauge(prometheus.GaugeOpts{Name: prefix + "_config_last_reload_success_timestamp_seconds", Help: "Time of the last successful reload."})
	reg.MustRegister(ok, ts)
	for _, name := range extra {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "Another app's metric."})
		g.SetToCurrentTime()
		reg.MustRegister(g)
	}
	ok.Set(1)
	ts.SetToCurrentTime()
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		metrics.ServeHTTP(rec, r)
		a.mu.Lock()
		a.accepts = append(a.accepts, r.Header.Get("Accept"))
		a.types = append(a.types, rec.Header().Get("Content-Type"))
		a.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		updates := a.updates
		a.mu.Unlock()
		if !updates {
			return
		}
		// Like a SIGHUP handler, the answer does not say how it went; the
		// metrics do, a moment later.
		b, _ := os.ReadFile(a.configFile)
		go func() {
			time.Sleep(50 * time.Millisecond)
			if strings.TrimSpace(string(b)) == "valid" {
				ok.Set(1)
				ts.SetToCurrentTime()
			} else {
				ok.Set(0)
			}
		}()
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

func (a *fakeApp) write(t *testing.T, content string) {
	t.Helper()
	if err := os.WriteFile(a.configFile, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMetricVerifier runs reloads of valid and invalid configurations
// against an app that reports them only through its metrics.
func TestMetricVerifier(t *testing.T) {
	app := newFakeApp(t, "fakeapp")
	h, err := signaler.NewHTTP(signaler.HTTPOptions{URL: app.url + "/-/reload"})
	if err != nil {
		t.Fatal(err)
	}
	mv, err := NewMetricVerifier(MetricOptions{URL: app.url + "/metrics", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	probe, err := mv.Probe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if probe.Timestamp != "fakeapp_config_last_reload_success_timestamp_seconds" || probe.Successful != "fakeapp_config_last_reload_successful" || !probe.OK {
		t.Fatalf("Probe = %+v; want both fakeapp metrics, OK", probe)
	}
	steps := []struct {
		config, want, wantErr string
	}{
		{"valid", "success", ""},
		{"invalid", "rejected", "fakeapp_config_last_reload_successful = 0 after the reload"},
		// Already 0 before: only the timeout without a success tells.
		{"still invalid", "rejected", "fakeapp_config_last_reload_successful = 0 after the reload"},
		{"valid", "success", ""},
	}
	for i, s := range steps {
		app.write(t, s.config)
		_, err := Deliver(t.Context(), h, mv, time.Now())
		if got := signaler.Reason(err); got != s.want || s.wantErr != "" && !strings.Contains(err.Error(), s.wantErr) {
			t.Fatalf("step %d (%s): Reload = %v (%s); want %s %q", i, s.config, err, got, s.want, s.wantErr)
		}
		t.Logf("step %d (%s): %s %v", i, s.config, signaler.Reason(err), err)
	}
	// A reload the app never acts on is not a verdict: an error to retry.
	app.mu.Lock()
	app.updates = false
	app.mu.Unlock()
	_, err = Deliver(t.Context(), h, mv, time.Now())
	if err == nil || signaler.Reason(err) != "error" || !strings.Contains(err.Error(), "did not move past") {
		t.Fatalf("lost reload: Reload = %v; want a retried error saying the timestamp did not move", err)
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	for i, acc := range app.accepts {
		if !strings.Contains(acc, "application/openmetrics-text") || !strings.Contains(acc, "text/plain") {
			t.Fatalf("scrape %d sent Accept %q; want OpenMetrics and text", i, acc)
		}
	}
	if !strings.HasPrefix(app.types[0], "application/openmetrics-text") {
		t.Errorf("the app answered %q; want OpenMetrics, so that its parsing is what was tested", app.types[0])
	}
}

// TestMetricVerifierText reads the classic text format, which an app
// without OpenMetrics answers, and an exposition with OpenMetrics-only
// constructs (info metric, exemplars, # EOF) that the text parser alone
// would refuse.
func TestMetricVerifierFormats(t *testing.T) {
	now := float64(time.Now().Add(time.Minute).UnixNano()) / 1e9
	bodies := map[string]string{
		"text/plain; version=0.0.4":                   fmt.Sprintf("# HELP x_config_last_reload_successful ok\n# TYPE x_config_last_reload_successful gauge\nx_config_last_reload_successful 1\nx_config_last_reload_success_timestamp_seconds %g\ngo_goroutines 7\n", now),
		"application/openmetrics-text; version=1.0.0": fmt.Sprintf("# TYPE build info\nbuild_info{version=\"1\"} 1\n# TYPE reqs counter\nreqs_total 3 # {trace_id=\"a\"} 1 1.5\n# TYPE x_config_last_reload_success_timestamp_seconds gauge\n# UNIT x_config_last_reload_success_timestamp_seconds seconds\nx_config_last_reload_success_timestamp_seconds %g\n# EOF\n", now),
	}
	for ct, body := range bodies {
		t.Run(ct, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				_, _ = w.Write([]byte(body))
			}))
			defer srv.Close()
			mv, err := NewMetricVerifier(MetricOptions{URL: srv.URL, Timeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			p, err := mv.Probe(t.Context())
			if err != nil || p.Timestamp != "x_config_last_reload_success_timestamp_seconds" {
				t.Fatalf("Probe = %+v, %v; want the x metric", p, err)
			}
			// No baseline (Before not run): the sample is after the delivery.
			if err := mv.wait(t.Context(), Delivery{At: time.Now()}, reading{}, false); err != nil {
				t.Errorf("wait: %v; want success, the timestamp is after the delivery", err)
			}
		})
	}
}

func TestMetricVerifierMissingOrAmbiguous(t *testing.T) {
	tests := []struct {
		name, metric string
		extra        []string
		prefix       string
		wantErr      string
	}{
		{name: "none", prefix: "other", metric: "", extra: nil,
			wantErr: "no metric name ends in _config_last_reload_success_timestamp_seconds"},
		{name: "two apps", prefix: "a", extra: []string{"b_config_last_reload_success_timestamp_seconds"},
			wantErr: "several reload metrics (a_config_last_reload_success_timestamp_seconds, b_config_last_reload_success_timestamp_seconds)"},
		{name: "override names an absent metric", prefix: "a", metric: "c_config_last_reload_successful",
			wantErr: "has no metric c_config_last_reload_success_timestamp_seconds or c_config_last_reload_successful"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newFakeApp(t, tt.prefix, tt.extra...)
			url := app.url + "/metrics"
			if tt.name == "none" {
				url = app.url + "/-/nothing" // 404 would be transient; use a real exposition without the metric
				srv := httptest.NewServer(promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{}))
				defer srv.Close()
				url = srv.URL
			}
			mv, err := NewMetricVerifier(MetricOptions{URL: url, Metric: tt.metric})
			if err != nil {
				t.Fatal(err)
			}
			_, err = mv.Probe(t.Context())
			if !errors.Is(err, ErrNoVerifyMetric) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Probe error = %v; want ErrNoVerifyMetric with %q", err, tt.wantErr)
			}
		})
	}
	// RELOAD_VERIFY_METRIC picks one of two apps.
	app := newFakeApp(t, "a", "b_config_last_reload_success_timestamp_seconds")
	mv, err := NewMetricVerifier(MetricOptions{URL: app.url + "/metrics", Metric: "a_config_last_reload_successful"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := mv.Probe(t.Context()); err != nil || p.Timestamp != "a_config_last_reload_success_timestamp_seconds" {
		t.Fatalf("Probe = %+v, %v; want the a metrics", p, err)
	}
}

func TestNewMetricVerifierRejects(t *testing.T) {
	tests := []struct {
		opts    MetricOptions
		wantErr string
	}{
		{MetricOptions{URL: "127.0.0.1:9090/metrics"}, "want an absolute http:// or https:// URL"},
		{MetricOptions{URL: "ftp://u:hunter2@h/m"}, `MetricOptions.URL "ftp://xxxxx:xxxxx@h/m"`},
		{MetricOptions{URL: "http://h/m", Metric: "up"}, `MetricOptions.Metric "up": want the name of a gauge ending in _last_reload_success_timestamp_seconds or _last_reload_successful`},
	}
	for _, tt := range tests {
		_, err := NewMetricVerifier(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("NewMetricVerifier(%+v) = %v; want %q without the password", tt.opts, err, tt.wantErr)
		}
	}
}

// TestMetricVerifierURLDown: a verification URL that does not answer is a
// transient error naming the URL without its credentials.
func TestMetricVerifierURLDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	mv, err := NewMetricVerifier(MetricOptions{URL: "http://user:hunter2@" + addr + "/metrics?token=tok-secret", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mv.Before(t.Context())
	err = mv.After(t.Context(), Delivery{At: time.Now()})
	if err == nil || signaler.Reason(err) != "error" || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "xxxxx:xxxxx@") {
		t.Fatalf("After = %v; want a retried connection error naming the redacted URL", err)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "tok-secret") {
		t.Errorf("error %q reveals a secret", err)
	}
}

// TestMetricBeforeDoesNotWait (issue 21 point 6): against an endpoint that
// accepts connections and never answers, with a one-hour timeout, Before
// returns at once (the delivery is not held up); only After waits, and it
// honours its context.
func TestMetricBeforeDoesNotWait(t *testing.T) {
	silent := testenv.SilentServer(t)
	mv, err := NewMetricVerifier(MetricOptions{URL: silent + "/metrics", Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	go func() {
		mv.Before(t.Context())
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(waitFor):
		t.Fatalf("Before still waits for the silent endpoint after %s; it must not hold up the delivery", waitFor)
	}
	ctx, cancel := context.WithCancel(t.Context())
	afterErr := make(chan error, 1)
	go func() { afterErr <- mv.After(ctx, Delivery{At: time.Now()}) }()
	cancel()
	select {
	case err := <-afterErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("After = %v; want context.Canceled once its context ends", err)
		}
	case <-time.After(waitFor):
		t.Fatal("After ignores its context")
	}
}
