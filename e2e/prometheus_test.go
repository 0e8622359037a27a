package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

// prometheusConfig scrapes one pollreload every second.
const prometheusConfig = `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pollreload
    static_configs:
      - targets: ['%s']
`

// reloadsQuery is the PromQL a dashboard or alert would use.
const reloadsQuery = `pollreload_reloads_total{result="success"}`

// TestPrometheusScrapesReloadCounter runs a real Prometheus that scrapes
// pollreload. After one delivered change, Prometheus' query API returns the
// increased reload counter, and promtool's linter finds nothing to say about
// the exposition.
func TestPrometheusScrapesReloadCounter(t *testing.T) {
	t.Parallel()
	prometheus := testenv.RequireTool(t, "prometheus", "prometheus")
	promtool := testenv.RequireTool(t, "promtool", "prometheus")

	vol := t.TempDir()
	kw := testenv.NewKubeletWriter(vol)
	if _, err := kw.Write(map[string]string{"app.conf": "a\n"}); err != nil {
		t.Fatal(err)
	}
	tg := testenv.StartTarget(t, testenv.UniqueName("prom"), vol)
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":    vol,
		"PROCESS_NAME":  tg.Name,
		"POLL_INTERVAL": "100ms",
	})

	work := t.TempDir()
	conf := filepath.Join(work, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(prometheusConfig, pr.MetricsAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := testenv.FreeAddr(t)
	testenv.Spawn(t, "prometheus", exec.Command(prometheus,
		"--config.file="+conf,
		"--storage.tsdb.path="+filepath.Join(work, "data"),
		"--web.listen-address="+promAddr,
	))
	// up == 1 means Prometheus' own parser accepted a scrape.
	testenv.WaitFor(t, 2*deliveryTimeout, func() error {
		v, ok, err := promQuery(promAddr, `up{job="pollreload"}`)
		if err != nil {
			return err
		}
		if !ok || v != 1 {
			return fmt.Errorf("up{job=\"pollreload\"} = %v (present %v); want 1", v, ok)
		}
		return nil
	})
	before, _, err := promQuery(promAddr, reloadsQuery)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := kw.Write(map[string]string{"app.conf": "b\n"}); err != nil {
		t.Fatal(err)
	}
	waitTargetFiles(t, tg, map[string]string{"app.conf": "b\n"})
	var after float64
	testenv.WaitFor(t, 2*deliveryTimeout, func() error {
		v, ok, err := promQuery(promAddr, reloadsQuery)
		if err != nil {
			return err
		}
		if !ok || v != before+1 {
			return fmt.Errorf("Prometheus: %s = %v (present %v); want %v", reloadsQuery, v, ok, before+1)
		}
		after = v
		return nil
	})

	text, err := testenv.ScrapeText(context.Background(), pr.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = bytes.NewReader([]byte(text))
	out, err := lint.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	t.Logf("prometheus: %s went %v -> %v after one change; promtool check metrics clean on %d bytes",
		reloadsQuery, before, after, len(text))
}

// promQuery runs an instant PromQL query against the Prometheus at addr and
// returns the value of its single series, or ok=false if the result is
// empty.
func promQuery(addr, query string) (v float64, ok bool, err error) {
	u := "http://" + addr + "/api/v1/query?query=" + url.QueryEscape(query)
	code, body, err := httpGet(context.Background(), u)
	if err != nil {
		return 0, false, err
	}
	if code != 200 {
		return 0, false, fmt.Errorf("GET %s: status %d: %s", u, code, body)
	}
	var resp struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return 0, false, fmt.Errorf("decode %s: %w", body, err)
	}
	switch n := len(resp.Data.Result); {
	case resp.Status != "success" || resp.Data.ResultType != "vector":
		return 0, false, fmt.Errorf("query %s: %s", query, body)
	case n == 0:
		return 0, false, nil
	case n > 1:
		return 0, false, fmt.Errorf("query %s: %d series; want 1", query, n)
	}
	s, _ := resp.Data.Result[0].Value[1].(string)
	v, err = strconv.ParseFloat(s, 64)
	return v, err == nil, err
}
