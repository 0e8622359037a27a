package verify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
	"github.com/pollreload/pollreload/signaler"
)

// These tests verify reloads of real servers from Debian's packages:
// Prometheus (by SIGHUP and by /-/reload) through its own metrics, and nginx
// through its replaced workers.

const verifyWait = 30 * time.Second // a limit for a loaded machine, not a latency

const promVerifyConfig = `global:
  scrape_interval: 1m
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: ['127.0.0.1:1']
`

// get returns the status and body of GET url.
func get(url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// startPrometheus runs Prometheus on a free port of 127.0.0.1 with the
// lifecycle API on, and waits until it is ready.
func startPrometheus(t *testing.T, job string) (conf, addr string, p *testenv.Process) {
	t.Helper()
	bin := testenv.RequireTool(t, "prometheus", "prometheus")
	work := t.TempDir()
	conf = filepath.Join(work, "prometheus.yml")
	writeFile(t, conf, fmt.Sprintf(promVerifyConfig, job))
	addr = testenv.FreeAddr(t)
	p = testenv.Spawn(t, "prometheus", exec.Command(bin, "--config.file="+conf,
		"--storage.tsdb.path="+filepath.Join(work, "data"), "--web.listen-address="+addr, "--web.enable-lifecycle"))
	testenv.WaitFor(t, verifyWait, func() error {
		code, _, err := get("http://" + addr + "/-/ready")
		if err == nil && code != 200 {
			err = fmt.Errorf("/-/ready: %d", code)
		}
		return err
	})
	return conf, addr, p
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// promJobs returns Prometheus' running configuration as it reports it.
func promJobs(t *testing.T, addr string) string {
	t.Helper()
	code, body, err := get("http://" + addr + "/api/v1/status/config")
	if err != nil || code != 200 {
		t.Fatalf("GET /api/v1/status/config: %d %v", code, err)
	}
	return body
}

// TestVerifyPrometheusBySIGHUP signals a real Prometheus through its PID
// and reads its verdict from its own /metrics.
func TestVerifyPrometheusBySIGHUP(t *testing.T) {
	conf, addr, prom := startPrometheus(t, "first")
	pidFile := filepath.Join(t.TempDir(), "prometheus.pid")
	writeFile(t, pidFile, strconv.Itoa(prom.PID()))
	p, err := signaler.NewProcess(signaler.ProcessOptions{PIDFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	mv, err := NewMetricVerifier(MetricOptions{URL: "http://" + addr + "/metrics", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	probe, err := mv.Probe(t.Context())
	if err != nil || probe.Timestamp != "prometheus_config_last_reload_success_timestamp_seconds" || probe.Successful != "prometheus_config_last_reload_successful" {
		t.Fatalf("Probe = %+v, %v; want Prometheus' two reload metrics", probe, err)
	}
	v := All(NewAliveVerifier(AliveOptions{}), mv)
	steps := []struct {
		name, config, want, wantJob string
	}{
		{"valid change", fmt.Sprintf(promVerifyConfig, "second"), "success", "job_name: second"},
		{"invalid YAML", "scrape_configs:\n  - job_name: [broken\n", "rejected", "job_name: second"},
		{"fix", fmt.Sprintf(promVerifyConfig, "third"), "success", "job_name: third"},
	}
	for _, s := range steps {
		writeFile(t, conf, s.config)
		_, err := Deliver(t.Context(), p, v, time.Now())
		if got := signaler.Reason(err); got != s.want {
			t.Fatalf("%s: Reload = %v (%s); want %s", s.name, err, got, s.want)
		}
		if jobs := promJobs(t, addr); !strings.Contains(jobs, s.wantJob) {
			t.Errorf("%s: Prometheus runs %s; want %q", s.name, jobs, s.wantJob)
		}
		if prom.Exited() {
			t.Fatalf("%s: Prometheus exited", s.name)
		}
		_, ok := mustProbe(t, mv)
		t.Logf("%s: %s (err: %v); prometheus_config_last_reload_successful=%v; running config has %q", s.name, signaler.Reason(err), err, ok, s.wantJob)
	}
}

func mustProbe(t *testing.T, mv *MetricVerifier) (MetricProbe, float64) {
	t.Helper()
	p, err := mv.Probe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p.OK {
		return p, 1
	}
	return p, 0
}

// TestVerifyPrometheusByLifecycleAPI reloads through POST /-/reload, which
// Prometheus answers 500 for a configuration it refuses: the delivery
// itself carries the verdict, as a *signaler.RejectedError.
func TestVerifyPrometheusByLifecycleAPI(t *testing.T) {
	conf, addr, _ := startPrometheus(t, "first")
	h, err := signaler.NewHTTP(signaler.HTTPOptions{URL: "http://" + addr + "/-/reload"})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, conf, "scrape_configs:\n  - job_name: [broken\n")
	_, err = h.Reload(t.Context(), time.Now())
	if signaler.Reason(err) != "rejected" || !strings.Contains(err.Error(), "status 500") || !strings.Contains(err.Error(), "yaml") {
		t.Fatalf("Reload of invalid YAML = %v (%s); want rejected, status 500 with the YAML error", err, signaler.Reason(err))
	}
	t.Logf("invalid YAML: %v", err)
	writeFile(t, conf, fmt.Sprintf(promVerifyConfig, "second"))
	if _, err := h.Reload(t.Context(), time.Now()); err != nil {
		t.Fatalf("Reload of the fix: %v", err)
	}
	if jobs := promJobs(t, addr); !strings.Contains(jobs, "job_name: second") {
		t.Errorf("Prometheus runs %s; want job second", jobs)
	}
}

// TestVerifyNginxChildren reloads a real nginx master: a good configuration
// replaces its workers, one that nginx -t refuses keeps the old ones, which
// go on serving the old content.
func TestVerifyNginxChildren(t *testing.T) {
	nginx := testenv.RequireTool(t, "nginx", "nginx-light")
	work := t.TempDir()
	conf := filepath.Join(work, "nginx.conf")
	port := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	write := func(body, extra string) { writeFile(t, conf, testenv.NginxConf(work, port, body, extra)) }
	write("version 1", "")
	master := testenv.Spawn(t, "nginx", exec.Command(nginx, "-p", work, "-e", filepath.Join(work, "error.log"), "-c", conf, "-g", "daemon off;"))
	master.Grace = 5 * time.Second
	waitServes := func(want string) {
		t.Helper()
		testenv.WaitFor(t, verifyWait, func() error {
			code, body, err := get(url)
			if err == nil && (code != 200 || body != want+"\n") {
				err = fmt.Errorf("GET %s = %d %q; want %q", url, code, body, want)
			}
			return err
		})
	}
	waitServes("version 1")
	cv := NewChildrenVerifier(ChildrenOptions{Timeout: 5 * time.Second})
	testenv.WaitFor(t, verifyWait, func() error {
		if w, _ := cv.Children(master.PID()); len(w) != 2 {
			return fmt.Errorf("nginx workers %v; want 2", w)
		}
		return nil
	})
	pidFile := filepath.Join(work, "master.pid")
	writeFile(t, pidFile, strconv.Itoa(master.PID()))
	p, err := signaler.NewProcess(signaler.ProcessOptions{PIDFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	v := All(NewAliveVerifier(AliveOptions{}), cv)
	steps := []struct {
		name, body, extra, want, serves string
	}{
		{"good change", "version 2", "", "success", "version 2"},
		{"refused by nginx -t", "version 3", "no_such_directive on;", "rejected", "version 2"},
		{"fix", "version 4", "", "success", "version 4"},
	}
	for _, s := range steps {
		write(s.body, s.extra)
		if s.want == "rejected" {
			if out, err := exec.Command(nginx, "-t", "-p", work, "-e", filepath.Join(work, "error.log"), "-c", conf).CombinedOutput(); err == nil {
				t.Fatalf("nginx -t accepts the refused config:\n%s", out)
			}
		}
		before, _ := cv.Children(master.PID())
		_, err := Deliver(t.Context(), p, v, time.Now())
		if got := signaler.Reason(err); got != s.want {
			t.Fatalf("%s: Reload = %v (%s); want %s", s.name, err, got, s.want)
		}
		waitServes(s.serves)
		after, _ := cv.Children(master.PID())
		t.Logf("%s: %s (err: %v); workers %v -> %v; serves %q", s.name, signaler.Reason(err), err, before, after, s.serves)
	}
}
