package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

// The drop-in tests run pollreload with the argument lists that manifests
// pass to prometheus-config-reloader and configmap-reload, as written there
// (flags_test.go in the main package has the same lists and their
// sources):
//
//   - prometheus-community/helm-charts at cf408a290aec489277a94450bb3511432477a53a:
//     charts/prometheus/templates/deploy.yaml, charts/alertmanager/templates/statefulset.yaml,
//     charts/prometheus-blackbox-exporter/templates/_helpers.tpl;
//   - prometheus-operator/prometheus-operator at 6adcebc5076c34f4f55f8f5f7b1e528929373ac7:
//     pkg/operator/config_reloader.go for the Thanos Ruler, and
//     pkg/prometheus/server/statefulset_test.go for the signal form;
//   - configmap-reload's args in the same helm-charts repository before it
//     switched reloader: charts/alertmanager/templates/statefulset.yaml at
//     cc2c507e4a4b625f561577bba13795b7f8bde40a^ and
//     charts/prometheus/templates/deploy.yaml at 3879ea94057bddb7e17ae3ef724f49a5bc2f9f5f^.
//
// Only what a pod and this machine make different is replaced: the mount
// paths (by the kubelet-style volume's directory), the application's port
// (by the test listener's), listen addresses (by a free port on 127.0.0.1,
// as tests listen nowhere else), and the blackbox chart's watchInterval
// value (1m in values.yaml, 200ms here, so the test takes seconds). Every
// list must reload its target exactly once per kubelet-style change, and
// not at all for a swap to identical content.

// reloadEndpoint is an application's reload endpoint on 127.0.0.1 that
// counts the requests it answers.
type reloadEndpoint struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits []string // "METHOD PATH" of each request
}

func newReloadEndpoint(t *testing.T) *reloadEndpoint {
	e := &reloadEndpoint{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hits = append(e.hits, r.Method+" "+r.URL.Path)
		e.mu.Unlock()
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *reloadEndpoint) port() string {
	_, port, _ := net.SplitHostPort(e.srv.Listener.Addr().String())
	return port
}

func (e *reloadEndpoint) requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.hits...)
}

// target is what a drop-in list reloads: an HTTP endpoint or a process.
type target interface {
	reloads(t *testing.T) []string
}

func (e *reloadEndpoint) reloads(*testing.T) []string { return e.requests() }

type processTarget struct{ tg *testenv.Target }

func (p processTarget) reloads(t *testing.T) []string {
	var out []string
	for range p.tg.Reloads(t) {
		out = append(out, "SIGHUP")
	}
	return out
}

func TestDropInFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// args returns the list for the volume vol, the application's
		// port and pollreload's listen address.
		args func(vol, port, listen string) []string
		// signal: the target is a process named by the list.
		signal bool
		want   string // each reload as the target sees it
	}{
		{"prometheus chart (prometheus-config-reloader)", func(vol, port, listen string) []string {
			return []string{
				"--watched-dir=" + vol,
				"--listen-address=" + listen,
				"--reload-url=http://127.0.0.1:" + port + "/-/reload",
			}
		}, false, "POST /-/reload"},
		{"alertmanager chart (prometheus-config-reloader)", func(vol, port, listen string) []string {
			return []string{
				"--watched-dir=" + vol,
				"--reload-url=http://127.0.0.1:" + port + "/-/reload",
			}
		}, false, "POST /-/reload"},
		{"blackbox-exporter chart (prometheus-config-reloader, one file)", func(vol, port, listen string) []string {
			return []string{
				"--config-file=" + filepath.Join(vol, "blackbox.yaml"),
				"--watch-interval=200ms",
				"--reload-url=http://127.0.0.1:" + port + "/-/reload",
				"--listen-address=" + listen,
				"--log-format=logfmt",
				"--log-level=info",
			}
		}, false, "POST /-/reload"},
		{"operator thanos ruler (prometheus-config-reloader)", func(vol, port, listen string) []string {
			return []string{
				"--listen-address=" + listen,
				"--reload-url=http://localhost:" + port + "/-/reload",
				"--watched-dir=" + vol,
			}
		}, false, "POST /-/reload"},
		{"alertmanager chart (configmap-reload)", func(vol, port, listen string) []string {
			return []string{
				"--volume-dir=" + vol,
				"--webhook-url=http://127.0.0.1:" + port + "/-/reload",
			}
		}, false, "POST /-/reload"},
		{"prometheus chart (configmap-reload, Go flag syntax)", func(vol, port, listen string) []string {
			return []string{
				"-volume-dir", vol,
				"-webhook-url", "http://127.0.0.1:" + port + "/-/reload",
				"-webhook-method", "PUT",
				"-web.listen-address", listen,
			}
		}, false, "PUT /-/reload"},
		// The operator's own signal list also passes --config-file and
		// --config-envsubst-file, which pollreload refuses (it does not
		// render; TestDropInRefusals). The rest of it, with the
		// process's name, reloads the process.
		{"operator signal form (prometheus-config-reloader)", func(vol, name, listen string) []string {
			return []string{
				"--listen-address=" + listen,
				"--reload-method=signal",
				"--runtimeinfo-url=http://localhost:9090/api/v1/status/runtimeinfo",
				"--watched-dir=" + vol,
				"--process-executable-name=" + name,
			}
		}, true, "SIGHUP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vol := t.TempDir()
			kw := testenv.NewKubeletWriter(vol)
			write := func(content string) {
				t.Helper()
				if _, err := kw.Write(map[string]string{"blackbox.yaml": content, "rules.yaml": "groups: []\n"}); err != nil {
					t.Fatal(err)
				}
			}
			write("v1\n")
			var tg target
			var portOrName string
			if tt.signal {
				p := testenv.StartTarget(t, testenv.UniqueName("prom"), vol)
				tg, portOrName = processTarget{p}, p.Name
			} else {
				e := newReloadEndpoint(t)
				tg, portOrName = e, e.port()
			}
			listen := testenv.FreeAddr(t)
			// The environment only tells testenv.Start where to scrape and
			// how fast to poll when a list does not say; the flags win.
			pr := testenv.Start(t, map[string]string{"METRICS_ADDR": listen, "POLL_INTERVAL": "200ms"}, tt.args(vol, portOrName, listen)...)

			wantReloads := func(n int) {
				t.Helper()
				testenv.WaitFor(t, deliveryTimeout, func() error {
					if got := tg.reloads(t); len(got) < n {
						return fmt.Errorf("target got %q; want %d reload(s)", got, n)
					}
					return nil
				})
				// Well past the delivery, still n: exactly once per change.
				waitScans(t, pr, 5)
				got := tg.reloads(t)
				if len(got) != n {
					t.Fatalf("target got %d reloads %q; want exactly %d\n%s", len(got), got, n, pr.Output())
				}
				for _, r := range got {
					if r != tt.want {
						t.Errorf("reload = %q; want %q", r, tt.want)
					}
				}
			}
			write("v2\n")
			wantReloads(1)
			write("v2\n") // a swap to identical content
			waitScans(t, pr, 3)
			write("v3\n")
			wantReloads(2)
			if got := pr.Metric(t, "pollreload_reloads_total", map[string]string{"result": "success"}); got != 2 {
				t.Errorf("pollreload_reloads_total{result=success} = %v; want 2", got)
			}
		})
	}
}

// TestDropInRefusals runs the lists pollreload cannot honour through the
// real binary: each exits 2 with one line naming the flag and the
// alternative.
func TestDropInRefusals(t *testing.T) {
	t.Parallel()
	vol := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"operator prometheus, signal", []string{
			"--listen-address=127.0.0.1:0",
			"--reload-method=signal",
			"--runtimeinfo-url=http://localhost:9090/api/v1/status/runtimeinfo",
			"--config-file=/etc/prometheus/config/prometheus.yaml.gz",
			"--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
			"--watched-dir=" + vol,
		}, `pollreload: invalid --config-envsubst-file="/etc/prometheus/config_out/prometheus.env.yaml": pollreload does not render configuration`},
		{"operator init container", []string{
			"--watch-interval=0",
			"--listen-address=127.0.0.1:0",
			"--config-file=/etc/prometheus/config/prometheus.yaml.gz",
			"--watched-dir=" + vol,
		}, `pollreload: invalid --watch-interval="0": pollreload has no run-once mode`},
		{"unknown flag", []string{"--watched-dir=" + vol, "--reload-url=http://127.0.0.1:9/", "--no-such-flag=1"},
			`pollreload: usage: unknown argument "--no-such-flag=1"; see pollreload --help`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := testenv.Run(t, deliveryTimeout, nil, tt.args...)
			if res.ExitCode != 2 {
				t.Errorf("exit code = %d; want 2\n%s", res.ExitCode, res.Stderr)
			}
			if got := strings.TrimSpace(res.Stderr); !strings.HasPrefix(got, tt.want) || strings.Contains(got, "\n") {
				t.Errorf("stderr = %q; want one line starting %q", got, tt.want)
			}
		})
	}
}
