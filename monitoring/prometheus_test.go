package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// prometheusConfig scrapes one pollreload every second and evaluates
// alerts.yaml, so a rule Prometheus cannot evaluate shows up too.
const prometheusConfig = `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: pollreload
    static_configs:
      - targets: [%q]
`

// grafanaBuiltins are the values given to Grafana's own variables. The test
// scrapes every second and lasts well under a minute, so a one-minute rate
// window (what Grafana's $__rate_interval is for a 15 s scrape interval) sees
// every event of the test, as a dashboard looking at the last hour would.
var grafanaBuiltins = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "1s",
	"__range":         "1m",
	"__range_s":       "60",
}

// waitTimeout bounds each wait for Prometheus or pollreload; generous, for a
// loaded machine.
const waitTimeout = 60 * time.Second

// TestQueriesReturnData starts a real pollreload (watching a kubelet-style
// volume it reloads a real target for, and a directory holding a file over
// MAX_FILE_SIZE, so scan errors are counted) and a real Prometheus scraping it
// and evaluating alerts.yaml. After a change has been delivered, every
// dashboard query and every alert expression must parse and return data
// there, and every rule must evaluate without error. The subtests under
// "misspelt" feed the same checks broken queries and expect each to fail.
func TestQueriesReturnData(t *testing.T) {
	prometheusBin := testenv.RequireTool(t, "prometheus", "prometheus")
	start := time.Now()

	vol := t.TempDir()
	kw := testenv.NewKubeletWriter(vol)
	if _, err := kw.Write(map[string]string{"app.conf": "a\n"}); err != nil {
		t.Fatal(err)
	}
	plain := t.TempDir()
	if err := os.WriteFile(filepath.Join(plain, "huge.bin"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	target := testenv.StartTarget(t, testenv.UniqueName("mon"), vol)
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":    vol + "," + plain,
		"PROCESS_NAME":  target.Name,
		"POLL_INTERVAL": "100ms",
		"MAX_FILE_SIZE": "1KiB",
	})

	work := t.TempDir()
	rules, err := filepath.Abs("alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(work, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(prometheusConfig, rules, pr.MetricsAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := &promAPI{base: "http://" + testenv.FreeAddr(t)}
	testenv.Spawn(t, "prometheus", exec.Command(prometheusBin,
		"--config.file="+conf,
		"--storage.tsdb.path="+filepath.Join(work, "data"),
		"--web.listen-address="+strings.TrimPrefix(prom.base, "http://"),
	))
	ctx := context.Background()
	// Two scrapes of the counters before the change, so that rates over the
	// change have a sample on each side.
	waitValue(t, prom, `count_over_time(up{job="pollreload"}[1m])`, func(v float64) bool { return v >= 2 })

	if _, err := kw.Write(map[string]string{"app.conf": "b\n"}); err != nil {
		t.Fatal(err)
	}
	waitValue(t, prom, `pollreload_reloads_total{result="success"}`, func(v float64) bool { return v >= 1 })
	waitValue(t, prom, `sum(pollreload_scan_errors_total{kind="limit"})`, func(v float64) bool { return v >= 1 })
	// Two scrapes after the reload, and one rule evaluation after that.
	since := time.Now()
	testenv.WaitFor(t, waitTimeout, func() error {
		if time.Since(since) < 2500*time.Millisecond {
			return fmt.Errorf("waiting for two more scrapes")
		}
		return nil
	})

	d := loadDashboard(t, "dashboard.json")
	vars, err := dashboardVariables(ctx, prom, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard variables resolved from Prometheus: %v", vars)

	checked := 0
	for _, q := range d.queries() {
		res, err := checkPanelQuery(ctx, prom, q.Expr, vars)
		if err != nil {
			t.Errorf("dashboard panel %s: %v", q.Panel, err)
			continue
		}
		checked++
		t.Logf("panel %-40s %s", q.Panel, res)
	}
	alerts := loadRules(t)
	for _, r := range alerts {
		res, err := checkAlertExpr(ctx, prom, r.Expr)
		if err != nil {
			t.Errorf("alert %s: %v", r.Alert, err)
			continue
		}
		checked++
		t.Logf("alert %-40s %s", r.Alert, res)
	}
	health, err := prom.ruleHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range alerts {
		if h := health[r.Alert]; h != "ok" {
			t.Errorf("alert %s: Prometheus rule health %q; want ok", r.Alert, h)
		}
	}
	t.Logf("summary: %d dashboard queries and %d alert expressions checked, %d returned data; %d rules healthy in Prometheus; %v in all",
		len(d.queries()), len(alerts), checked, len(health), time.Since(start).Round(100*time.Millisecond))

	t.Run("misspelt", func(t *testing.T) {
		cases := []struct {
			name    string
			alert   bool
			expr    string
			wantErr string
		}{
			{"panel metric", false, `sum by (result) (increase(pollreload_reloads_totl{job=~"$job"}[$__rate_interval]))`, "pollreload_reloads_totl"},
			{"panel label value", false, `sum by (result) (increase(pollreload_reloads_total{result="sucess"}[$__rate_interval]))`, `result="sucess"`},
			{"panel variable", false, `pollreload_watched_files{job=~"$jobs"}`, "$jobs"},
			{"panel syntax", false, `sum by (result (rate(pollreload_reloads_total[$__rate_interval]))`, "bad_data"},
			{"panel vector matching", false, `pollreload_watched_files / pollreload_scans_total`, "no data"},
			{"alert metric", true, `max_over_time(pollreload_last_reload_sucessful[5m]) == 0`, "pollreload_last_reload_sucessful"},
			{"alert operand of or", true, "increase(pollreload_missed_scan_total[5m]) >= 3\nor\nsum without (result) (increase(pollreload_scans_total[10m])) == 0", "pollreload_missed_scan_total"},
			{"alert vector matching", true, `pollreload_poll_interval_seconds / on (result) pollreload_scans_total > 2`, "no data"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var err error
				if tc.alert {
					_, err = checkAlertExpr(ctx, prom, tc.expr)
				} else {
					_, err = checkPanelQuery(ctx, prom, tc.expr, vars)
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got %v; want an error containing %q", err, tc.wantErr)
				}
			})
		}
	})
}

// waitValue waits until the instant query expr returns a sample whose value
// satisfies ok.
func waitValue(t *testing.T, prom *promAPI, expr string, ok func(float64) bool) {
	t.Helper()
	testenv.WaitFor(t, waitTimeout, func() error {
		res, err := prom.query(context.Background(), expr)
		if err != nil {
			return err
		}
		for _, s := range res {
			if ok(s.Value) {
				return nil
			}
		}
		return fmt.Errorf("Prometheus: %s = %v; still waiting", expr, res)
	})
}

// dashboardVariables resolves the dashboard's variables as Grafana would
// with every value selected: each query variable's label_values() is asked
// of Prometheus (after substituting the variables before it), and its
// values are written as a regexp alternative.
func dashboardVariables(ctx context.Context, prom *promAPI, d *dashboard) (map[string]string, error) {
	vars := map[string]string{}
	for k, v := range grafanaBuiltins {
		vars[k] = v
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, err := substitute(v.query(), vars)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		m := labelValuesQuery.FindStringSubmatch(q)
		if m == nil {
			return nil, fmt.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
		}
		values, err := prom.labelValues(ctx, m[1], m[2])
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		if len(values) == 0 {
			return nil, fmt.Errorf("variable %s: %s has no values in Prometheus", v.Name, q)
		}
		vars[v.Name] = regexValue(values)
	}
	return vars, nil
}

// checkPanelQuery substitutes the dashboard variables in expr, then
// requires that Prometheus accepts it and returns at least one finite
// sample, and that each of its vector selectors matches series.
func checkPanelQuery(ctx context.Context, prom *promAPI, expr string, vars map[string]string) (string, error) {
	q, err := substitute(expr, vars)
	if err != nil {
		return "", err
	}
	res, err := prom.query(ctx, q)
	if err != nil {
		return "", err
	}
	if err := checkSelectors(ctx, prom, q); err != nil {
		return "", err
	}
	finite := 0
	for _, s := range res {
		if !math.IsNaN(s.Value) && !math.IsInf(s.Value, 0) {
			finite++
		}
	}
	if finite == 0 {
		return "", fmt.Errorf("query %s: no data (%d series, none with a finite value)", q, len(res))
	}
	return res.String(), nil
}

// checkAlertExpr requires that Prometheus accepts an alert expression, that
// each of its vector selectors matches series, and that the expression
// with bool comparisons (the values the alert compares, whether or not it
// would fire now) returns data.
func checkAlertExpr(ctx context.Context, prom *promAPI, expr string) (string, error) {
	if _, err := prom.query(ctx, expr); err != nil {
		return "", err
	}
	if err := checkSelectors(ctx, prom, expr); err != nil {
		return "", err
	}
	q := withBool(expr)
	res, err := prom.query(ctx, q)
	if err != nil {
		return "", err
	}
	if len(res) == 0 {
		return "", fmt.Errorf("query %s: no data", strings.Join(strings.Fields(q), " "))
	}
	return res.String(), nil
}

// checkSelectors requires every vector selector of expr to match at least
// one series: a misspelt metric name or label value matches none.
func checkSelectors(ctx context.Context, prom *promAPI, expr string) error {
	sels := vectorSelectors(expr)
	if len(sels) == 0 {
		return fmt.Errorf("query %s: no metric in it", expr)
	}
	for _, sel := range sels {
		res, err := prom.query(ctx, "count("+sel+")")
		if err != nil {
			return err
		}
		if len(res) == 0 {
			return fmt.Errorf("selector %s matches no series in Prometheus (a misspelt metric or label?)", sel)
		}
	}
	return nil
}

// promAPI is a client of Prometheus' HTTP API.
type promAPI struct{ base string }

// sample is one element of an instant vector.
type sample struct {
	Labels map[string]string
	Value  float64
}

type vector []sample

func (v vector) String() string {
	parts := make([]string, 0, len(v))
	for _, s := range v {
		var labels []string
		for _, k := range sortedKeys(s.Labels) {
			if k != "instance" && k != "job" {
				labels = append(labels, k+"="+s.Labels[k])
			}
		}
		parts = append(parts, fmt.Sprintf("{%s} %.4g", strings.Join(labels, ","), s.Value))
	}
	return fmt.Sprintf("%d series: %s", len(v), strings.Join(parts, " "))
}

// get fetches path?params and decodes the data of a successful answer into
// v; an error answer (such as a parse error, "bad_data") is returned as an
// error naming it.
func (p *promAPI) get(ctx context.Context, path string, params url.Values, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := p.base + path + "?" + params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var answer struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("GET %s: status %s: %s", u, resp.Status, body)
	}
	if answer.Status != "success" {
		return fmt.Errorf("Prometheus refused %s %s: %s: %s", path, params.Encode(), answer.ErrorType, answer.Error)
	}
	return json.Unmarshal(answer.Data, v)
}

// query runs an instant query now and returns its vector; a scalar answer
// is returned as one sample without labels.
func (p *promAPI) query(ctx context.Context, expr string) (vector, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	parse := func(pair [2]any) (float64, error) {
		s, _ := pair[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	switch data.ResultType {
	case "vector":
		var raw []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &raw); err != nil {
			return nil, err
		}
		out := make(vector, 0, len(raw))
		for _, r := range raw {
			v, err := parse(r.Value)
			if err != nil {
				return nil, fmt.Errorf("query %s: value %v: %w", expr, r.Value, err)
			}
			out = append(out, sample{Labels: r.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var pair [2]any
		if err := json.Unmarshal(data.Result, &pair); err != nil {
			return nil, err
		}
		v, err := parse(pair)
		return vector{{Value: v}}, err
	}
	return nil, fmt.Errorf("query %s: result type %q; want vector or scalar", expr, data.ResultType)
}

// labelValues returns the values of label on the series matching selector,
// as Grafana's label_values(selector, label) does.
func (p *promAPI) labelValues(ctx context.Context, selector, label string) ([]string, error) {
	var values []string
	err := p.get(ctx, "/api/v1/label/"+url.PathEscape(label)+"/values", url.Values{"match[]": {selector}}, &values)
	return values, err
}

// ruleHealth returns the health Prometheus reports for each alerting rule
// ("ok" once evaluated without error).
func (p *promAPI) ruleHealth(ctx context.Context) (map[string]string, error) {
	var data struct {
		Groups []struct {
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get(ctx, "/api/v1/rules", url.Values{"type": {"alert"}}, &data); err != nil {
		return nil, err
	}
	health := map[string]string{}
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			health[r.Name] = r.Health
			if r.LastError != "" {
				health[r.Name] += ": " + r.LastError
			}
		}
	}
	return health, nil
}
