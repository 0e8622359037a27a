package charts

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestRulesAndDashboard renders the PrometheusRule and the dashboard
// ConfigMap, from this chart and from a chart that depends on it, and
// requires them to carry exactly ../monitoring/alerts.yaml and
// ../monitoring/dashboard.json (the sources the monitoring tests check
// against a real Prometheus), and the dashboard the label Grafana's sidecar
// discovers. Both are off by default.
func TestRulesAndDashboard(t *testing.T) {
	rulesSource, err := os.ReadFile(filepath.Join("..", "monitoring", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var wantRules monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(rulesSource, &wantRules); err != nil {
		t.Fatalf("monitoring/alerts.yaml does not decode strictly as a PrometheusRule spec: %v", err)
	}
	dashboard, err := os.ReadFile(filepath.Join("..", "monitoring", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}

	including := filepath.Join(t.TempDir(), "pgbouncer")
	copyDir(t, filepath.Join("testdata", "pgbouncer"), including)
	copyDir(t, chartDir, filepath.Join(including, "charts", "pollreload"))
	on := []string{"--set", "prometheusRule.enabled=true", "--set", "prometheusRule.labels.release=kube-prometheus-stack", "--set", "grafanaDashboard.enabled=true"}
	cases := []struct {
		name  string
		chart string
		args  []string
		want  bool
	}{
		{"off by default", chartDir, nil, false},
		{"on", chartDir, on, true},
		{"on, example off", chartDir, append([]string{"--set", "app.enabled=false"}, on...), true},
		{"from a parent chart", including, []string{"--set", "pollreload.prometheusRule.enabled=true", "--set", "pollreload.prometheusRule.labels.release=kube-prometheus-stack", "--set", "pollreload.grafanaDashboard.enabled=true"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rules []*monitoringv1.PrometheusRule
			var dashboards []*corev1.ConfigMap
			for _, o := range decodeStrict(t, tc.name, render(t, tc.chart, tc.args...)) {
				switch v := o.Value.(type) {
				case *monitoringv1.PrometheusRule:
					rules = append(rules, v)
				case *corev1.ConfigMap:
					if _, ok := v.Data["pollreload.json"]; ok {
						dashboards = append(dashboards, v)
					}
				}
			}
			want := 0
			if tc.want {
				want = 1
			}
			if len(rules) != want || len(dashboards) != want {
				t.Fatalf("got %d PrometheusRules and %d dashboard ConfigMaps; want %d of each", len(rules), len(dashboards), want)
			}
			if !tc.want {
				return
			}
			if !reflect.DeepEqual(rules[0].Spec, wantRules) {
				t.Errorf("the PrometheusRule's spec differs from monitoring/alerts.yaml:\ngot  %+v\nwant %+v", rules[0].Spec, wantRules)
			}
			if got := rules[0].Labels["release"]; got != "kube-prometheus-stack" {
				t.Errorf("got PrometheusRule label release=%q; want kube-prometheus-stack", got)
			}
			cm := dashboards[0]
			if got := cm.Labels["grafana_dashboard"]; got != "1" {
				t.Errorf("got dashboard label grafana_dashboard=%q; want \"1\"", got)
			}
			if got := cm.Data["pollreload.json"]; got != string(dashboard) {
				t.Errorf("the ConfigMap's pollreload.json differs from monitoring/dashboard.json (%d bytes; want %d)", len(got), len(dashboard))
			}
		})
	}
}
