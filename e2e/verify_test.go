package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// These tests prove issue 10 on real software: a reload counts as a success
// only once the application took it, a refused one is "rejected" and not
// sent again until the content changes, and several targets are reloaded
// independently.

const vPromConfig = `global:
  scrape_interval: 1m
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: ['127.0.0.1:1']
`

const vBrokenYAML = "scrape_configs:\n  - job_name: [broken\n"

// vPrometheus is a Prometheus from Debian's package on 127.0.0.1, with its
// configuration in its own directory, a PID file written for it, and the
// lifecycle API on.
type vPrometheus struct {
	dir, conf, pidFile, addr string
	proc                     *testenv.Process
}

func startVPrometheus(t *testing.T, job string) *vPrometheus {
	t.Helper()
	bin := testenv.RequireTool(t, "prometheus", "prometheus")
	work := t.TempDir()
	p := &vPrometheus{dir: filepath.Join(work, "config"), addr: testenv.FreeAddr(t)}
	if err := os.Mkdir(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p.conf = filepath.Join(p.dir, "prometheus.yml")
	p.write(t, fmt.Sprintf(vPromConfig, job))
	p.proc = testenv.Spawn(t, "prometheus", exec.Command(bin, "--config.file="+p.conf,
		"--storage.tsdb.path="+filepath.Join(work, "data"), "--web.listen-address="+p.addr, "--web.enable-lifecycle"))
	// By PID, not by name: other tests on the machine run Prometheus too.
	p.pidFile = filepath.Join(work, "prometheus.pid")
	if err := os.WriteFile(p.pidFile, []byte(strconv.Itoa(p.proc.PID())), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, deliveryTimeout, func() error {
		code, _, err := httpGet(t.Context(), "http://"+p.addr+"/-/ready")
		if err == nil && code != 200 {
			err = fmt.Errorf("prometheus /-/ready: %d", code)
		}
		return err
	})
	return p
}

func (p *vPrometheus) write(t *testing.T, content string) {
	t.Helper()
	if err := os.WriteFile(p.conf, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// config returns the configuration Prometheus runs, from its own API.
func (p *vPrometheus) config(t *testing.T) string {
	t.Helper()
	code, body, err := httpGet(t.Context(), "http://"+p.addr+"/api/v1/status/config")
	if err != nil || code != 200 {
		t.Fatalf("GET /api/v1/status/config: %d %v", code, err)
	}
	return body
}

// waitMetric waits until the daemon's metric (summed over the series with
// labels) equals want.
func waitMetric(t *testing.T, pr *testenv.Pollreload, name string, labels map[string]string, want float64) {
	t.Helper()
	testenv.WaitFor(t, deliveryTimeout, func() error {
		if got := pr.Metric(t, name, labels); got != want {
			return fmt.Errorf("%s%v = %v; want %v", name, labels, got, want)
		}
		return nil
	})
}

// reloadsBy returns pollreload_reloads_total of one result.
func reloadsBy(t *testing.T, pr *testenv.Pollreload, result string) float64 {
	t.Helper()
	return pr.Metric(t, "pollreload_reloads_total", map[string]string{"result": result})
}

// logLines returns the lines of the daemon's output that contain every one
// of words.
func logLines(pr *testenv.Pollreload, words ...string) []string {
	var out []string
	for line := range strings.Lines(pr.Output()) {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// reloadState is the line the tests log after each step.
func reloadState(t *testing.T, pr *testenv.Pollreload) string {
	t.Helper()
	return fmt.Sprintf("reloads_total success=%v rejected=%v target_died=%v error=%v; last_reload_successful=%v; reload_pending=%v",
		reloadsBy(t, pr, "success"), reloadsBy(t, pr, "rejected"), reloadsBy(t, pr, "target_died"), reloadsBy(t, pr, "error"),
		pr.Metric(t, "pollreload_last_reload_successful", nil), pr.Metric(t, "pollreload_reload_pending", nil))
}

// healthz returns the status of the daemon's /healthz.
func healthz(t *testing.T, pr *testenv.Pollreload) int {
	t.Helper()
	code, _, err := httpGet(t.Context(), "http://"+pr.MetricsAddr+"/healthz")
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestVerifyPrometheusSIGHUP: Prometheus reloads on SIGHUP and tells how it
// went only in its own metrics, which pollreload reads from RELOAD_VERIFY_URL.
func TestVerifyPrometheusSIGHUP(t *testing.T) {
	t.Parallel()
	prom := startVPrometheus(t, "first")
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":        prom.dir,
		"PID_FILE":          prom.pidFile,
		"RELOAD_VERIFY_URL": "http://" + prom.addr + "/metrics",
		"POLL_INTERVAL":     "100ms",
		"SETTLE_TIME":       "200ms",
	})

	// A valid change: a success, and Prometheus runs the new job.
	prom.write(t, fmt.Sprintf(vPromConfig, "second"))
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "success"}, 1)
	if cfg := prom.config(t); !strings.Contains(cfg, "job_name: second") {
		t.Errorf("after the valid change Prometheus runs:\n%s\nwant job second", cfg)
	}
	t.Logf("valid change: %s; /api/v1/status/config has job_name: second", reloadState(t, pr))

	// Invalid YAML: rejected, the gauge reads 0, Prometheus keeps running
	// the old configuration, and the same bytes are not sent again.
	prom.write(t, vBrokenYAML)
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "rejected"}, 1)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 0)
	waitScans(t, pr, 30) // 3 s of scans: time for a retry loop to show
	if got := reloadsBy(t, pr, "rejected"); got != 1 {
		t.Errorf("rejected = %v after 30 more scans; want 1: a refused config is not sent again until it changes", got)
	}
	if cfg := prom.config(t); !strings.Contains(cfg, "job_name: second") {
		t.Errorf("after the invalid change Prometheus runs:\n%s\nwant the old job second", cfg)
	}
	if prom.proc.Exited() {
		t.Fatal("Prometheus exited")
	}
	if code := healthz(t, pr); code != 200 {
		t.Errorf("/healthz = %d after a rejection; want 200 (the sidecar works, the config is bad)", code)
	}
	warn := logLines(pr, "prometheus_config_last_reload_successful = 0")
	if len(warn) != 1 {
		t.Errorf("log lines naming the app's verdict: %q; want exactly one", warn)
	}
	t.Logf("invalid YAML: %s; Prometheus still runs job second; log: %s", reloadState(t, pr), strings.Join(warn, " | "))

	// The fix: a success, the gauge back to 1.
	prom.write(t, fmt.Sprintf(vPromConfig, "third"))
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "success"}, 2)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 1)
	if cfg := prom.config(t); !strings.Contains(cfg, "job_name: third") {
		t.Errorf("after the fix Prometheus runs:\n%s\nwant job third", cfg)
	}
	t.Logf("fix: %s; /api/v1/status/config has job_name: third", reloadState(t, pr))
}

// TestVerifyPrometheusLifecycleAPI: POST /-/reload answers 500 for a
// configuration Prometheus refuses: rejected, and not retried in a loop.
func TestVerifyPrometheusLifecycleAPI(t *testing.T) {
	t.Parallel()
	prom := startVPrometheus(t, "first")
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":    prom.dir,
		"RELOAD_URL":    "http://" + prom.addr + "/-/reload",
		"POLL_INTERVAL": "100ms",
		"SETTLE_TIME":   "200ms",
	})
	prom.write(t, vBrokenYAML)
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "rejected"}, 1)
	waitScans(t, pr, 30)
	if got := reloadsBy(t, pr, "rejected"); got != 1 {
		t.Errorf("rejected = %v after 30 more scans; want 1 (no retry loop)", got)
	}
	if got := pr.Metric(t, "pollreload_last_reload_successful", nil); got != 0 {
		t.Errorf("last_reload_successful = %v; want 0", got)
	}
	warn := logLines(pr, "status 500")
	if len(warn) != 1 || !strings.Contains(warn[0], "yaml") {
		t.Errorf("log lines with the 500: %q; want one, with Prometheus' YAML error", warn)
	}
	t.Logf("invalid YAML: %s; log: %s", reloadState(t, pr), strings.Join(warn, " | "))

	prom.write(t, fmt.Sprintf(vPromConfig, "second"))
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "success"}, 1)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 1)
	if cfg := prom.config(t); !strings.Contains(cfg, "job_name: second") {
		t.Errorf("after the fix Prometheus runs:\n%s\nwant job second", cfg)
	}
	t.Logf("fix: %s; /api/v1/status/config has job_name: second", reloadState(t, pr))
}

// TestVerifyNginxChildren: with RELOAD_VERIFY=children a good change
// replaces nginx's workers (success); a config nginx -t refuses is rejected
// and the old workers keep serving the old content.
func TestVerifyNginxChildren(t *testing.T) {
	t.Parallel()
	nginx := testenv.RequireTool(t, "nginx", "nginx-light")
	work := t.TempDir()
	dir := filepath.Join(work, "config")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	port := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	write := func(body, extra string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(testenv.NginxConf(work, port, body, extra)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("version 1", "")
	master := testenv.Spawn(t, "nginx", exec.Command(nginx, "-p", work, "-e", filepath.Join(work, "error.log"), "-c", conf, "-g", "daemon off;"))
	master.Grace = 5 * time.Second
	waitBody(t, url, "version 1\n")
	workers := nginxWorkers(t, master.PID())
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":     dir,
		"PID_FILE":       filepath.Join(work, "nginx.pid"),
		"RELOAD_VERIFY":  "children",
		"RELOAD_TIMEOUT": "3s",
		"POLL_INTERVAL":  "100ms",
		"SETTLE_TIME":    "200ms",
	})

	write("version 2", "")
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "success"}, 1)
	waitBody(t, url, "version 2\n")
	newWorkers := nginxWorkers(t, master.PID())
	for _, w := range newWorkers {
		if slices.Contains(workers, w) {
			t.Errorf("worker %d survived the good reload", w)
		}
	}
	t.Logf("good change: %s; workers %v -> %v; serves %q", reloadState(t, pr), workers, newWorkers, "version 2")

	write("version 3", "no_such_directive on;")
	if out, err := exec.Command(nginx, "-t", "-p", work, "-e", filepath.Join(work, "error.log"), "-c", conf).CombinedOutput(); err == nil {
		t.Fatalf("nginx -t accepts the config meant to be refused:\n%s", out)
	}
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "rejected"}, 1)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 0)
	waitBody(t, url, "version 2\n")
	kept := nginxWorkers(t, master.PID())
	if !slices.Equal(kept, newWorkers) {
		t.Errorf("workers %v after the refused config; want the old ones %v", kept, newWorkers)
	}
	warn := logLines(pr, "no new generation of workers")
	t.Logf("refused config: %s; workers %v kept, still serving %q; log: %s", reloadState(t, pr), kept, "version 2", strings.Join(warn, " | "))

	write("version 4", "")
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "success"}, 2)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 1)
	waitBody(t, url, "version 4\n")
	t.Logf("fix: %s; serves %q", reloadState(t, pr), "version 4")
}

// hook is a webhook receiver on 127.0.0.1 that counts its requests.
type hook struct {
	mu   sync.Mutex
	hits []time.Time
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.hits = append(h.hits, time.Now())
	h.mu.Unlock()
}

func (h *hook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.hits)
}

func serveHook(t *testing.T, addr string, h *hook) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// TestVerifyTwoWebhooksOneDown: of two RELOAD_URL targets, the one that is
// up gets its request at once; the one that is down gets it when it comes
// back, and the first is not called again meanwhile.
func TestVerifyTwoWebhooksOneDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up, down := &hook{}, &hook{}
	upAddr, downAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	serveHook(t, upAddr, up)
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":    dir,
		"RELOAD_URL":    "http://" + downAddr + "/hook," + "http://" + upAddr + "/hook",
		"POLL_INTERVAL": "100ms",
		"SETTLE_TIME":   "200ms",
	})
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, deliveryTimeout, func() error {
		if n := up.count(); n != 1 {
			return fmt.Errorf("the up webhook got %d requests; want 1", n)
		}
		return nil
	})
	waitMetric(t, pr, "pollreload_reload_pending", nil, 1) // the down one still waits
	// Each target counts under its own bounded label: host and path.
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "success", "target": upAddr + "/hook"}, 1)
	if got := pr.Metric(t, "pollreload_reloads_total", map[string]string{"result": "error", "target": downAddr + "/hook"}); got < 1 {
		t.Errorf(`reloads_total{result="error",target=%q} = %v; want at least 1`, downAddr+"/hook", got)
	}
	if got := pr.Metric(t, "pollreload_last_reload_successful", nil); got != 0 {
		t.Errorf("last_reload_successful = %v while one webhook fails; want 0", got)
	}
	t.Logf("one down: up webhook got 1 request; %s", reloadState(t, pr))

	waitScans(t, pr, 20)
	serveHook(t, downAddr, down)
	testenv.WaitFor(t, deliveryTimeout, func() error {
		if n := down.count(); n != 1 {
			return fmt.Errorf("the webhook that came back got %d requests; want 1", n)
		}
		return nil
	})
	waitMetric(t, pr, "pollreload_reload_pending", nil, 0)
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "success", "target": downAddr + "/hook"}, 1)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 1)
	if n := up.count(); n != 1 {
		t.Errorf("the up webhook got %d requests; want 1: it had the change already", n)
	}
	t.Logf("back up: down webhook got 1 request, up webhook still 1; %s", reloadState(t, pr))
}
