package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pollreload/pollreload/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// ruleFile is a Prometheus rule file, as alerts.yaml writes it.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// ruleTests is promtool's unit test file, as alerts_test.yaml writes it.
type ruleTests struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	Tests              []struct {
		Interval    string `yaml:"interval"`
		InputSeries []struct {
			Series string `yaml:"series"`
			Values string `yaml:"values"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []templateVar `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type templateVar struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Query json.RawMessage `json:"query"`
}

// query returns a query variable's query, which Grafana stores as a string
// or as {"query": ..., "refId": ...}.
func (v templateVar) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &q)
	return q.Query
}

// panelQuery is one dashboard query with where it comes from.
type panelQuery struct {
	Panel string
	Expr  string
}

// queries lists every target of every panel, rows' panels included.
func (d *dashboard) queries() []panelQuery {
	var out []panelQuery
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, panelQuery{Panel: fmt.Sprintf("%q/%s", p.Title, tg.RefID), Expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// decodeYAML decodes a file strictly: an unknown field is an error.
func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	decodeYAML(t, "alerts.yaml", &f)
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("alerts.yaml holds no rules")
	}
	return rules
}

func loadDashboard(t *testing.T, path string) *dashboard {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &d
}

// TestAlertRules runs promtool's checker and the unit tests of alerts.yaml,
// and requires each alert to have a firing and a not-firing test case.
func TestAlertRules(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool", "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	}

	var tests ruleTests
	decodeYAML(t, "alerts_test.yaml", &tests)
	firing, quiet := map[string]int{}, map[string]int{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname]++
			} else {
				quiet[a.Alertname]++
			}
		}
	}
	for _, r := range loadRules(t) {
		if firing[r.Alert] == 0 || quiet[r.Alert] == 0 {
			t.Errorf("alert %s: got %d firing and %d not-firing test cases in alerts_test.yaml; want at least one of each",
				r.Alert, firing[r.Alert], quiet[r.Alert])
		}
	}
}

// TestAlertsDocumented requires a severity, a summary, a description and a
// runbook_url on every alert, the runbook_url pointing at a section of docs/operations.md
// that says what the alert means, how to check and how to fix it.
func TestAlertsDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := markdownSections(string(readme))
	const base = "https://github.com/pollreload/pollreload/blob/main/docs/operations.md#"
	for _, r := range loadRules(t) {
		if !regexp.MustCompile(`^Pollreload[A-Za-z]+$`).MatchString(r.Alert) {
			t.Errorf("alert %q: want a CamelCase name starting with Pollreload", r.Alert)
		}
		if r.Labels["severity"] == "" || r.For == "" {
			t.Errorf("alert %s: got severity %q and for %q; want both set", r.Alert, r.Labels["severity"], r.For)
		}
		for _, key := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[key]) == "" {
				t.Errorf("alert %s has no %s annotation", r.Alert, key)
			}
		}
		url := r.Annotations["runbook_url"]
		anchor, ok := strings.CutPrefix(url, base)
		if !ok {
			t.Errorf("alert %s: runbook_url %q; want it under %s", r.Alert, url, base)
			continue
		}
		body, ok := sections[anchor]
		if !ok {
			t.Errorf("alert %s: runbook_url anchor #%s names no heading of docs/operations.md", r.Alert, anchor)
			continue
		}
		for _, part := range []string{"**Meaning.**", "**Check.**", "**Fix.**"} {
			if !strings.Contains(body, part) {
				t.Errorf("docs/operations.md section #%s lacks %s", anchor, part)
			}
		}
	}
}

// markdownSections maps the GitHub anchor of every heading to the text up
// to the next heading.
func markdownSections(text string) map[string]string {
	sections := map[string]string{}
	anchor, fence := "", false
	var body strings.Builder
	flush := func() {
		if anchor != "" {
			sections[anchor] = body.String()
		}
		body.Reset()
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if !fence && strings.HasPrefix(line, "#") {
			flush()
			anchor = githubAnchor(strings.TrimLeft(line, "# "))
			continue
		}
		body.WriteString(line + "\n")
	}
	flush()
	return sections
}

// githubAnchor is the id GitHub gives a heading: lower case, punctuation
// dropped, spaces turned into hyphens.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestChartCopiesIdentical keeps the chart's copies of the rules and the
// dashboard byte-identical to the files here, which are the source.
func TestChartCopiesIdentical(t *testing.T) {
	for _, name := range []string{"alerts.yaml", "dashboard.json"} {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join("..", "charts", "pollreload", "files", name)
		dst, err := os.ReadFile(copyPath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src, dst) {
			t.Errorf("%s differs from monitoring/%s; run: cp monitoring/%s %s", copyPath, name, name, "charts/pollreload/files/")
		}
	}
}

// TestDashboardWellFormed checks the dashboard's structure: unique panel
// ids, every panel on the datasource variable, every query variable a
// label_values() query, and a query in every target.
func TestDashboardWellFormed(t *testing.T) {
	d := loadDashboard(t, "dashboard.json")
	if d.UID == "" || d.Title == "" {
		t.Errorf("got uid %q and title %q; want both set", d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" && !labelValuesQuery.MatchString(v.query()) {
			t.Errorf("variable %s: query %q; want label_values(selector, label)", v.Name, v.query())
		}
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("got variables %v; want a datasource variable named datasource", vars)
	}
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup {
				t.Errorf("panel %q has the id %d of panel %q", p.Title, p.ID, other)
			}
			ids[p.ID] = p.Title
			if p.Type != "row" {
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: got datasource %+v; want uid ${datasource}", p.Title, p.Datasource)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q target %s has no expr", p.Title, tg.RefID)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if n := len(d.queries()); n == 0 {
		t.Error("the dashboard has no queries")
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
