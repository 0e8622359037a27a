package poller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/verify"
)

// sum adds up the metric name's series with the label pair.
func (h *harness) sum(name, label, value string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabel(m.GetLabel(), label, value) {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// TestPrecheckGatesEveryTarget runs a real check command (a shell script
// that accepts a config saying "good") in front of two targets: it runs
// once per content for both; a refused content reaches neither, counts
// rejected for each, turns the gauge to 0 and is not checked again; the
// fix is delivered to both.
func TestPrecheckGatesEveryTarget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	write(t, conf, "good 1")
	runs := filepath.Join(t.TempDir(), "runs")
	script := `echo run >> "` + runs + `"; grep -q '^good' "` + conf + `" || { echo "app: bad config in ` + conf + `"; exit 1; }`
	check, err := verify.NewCommand(verify.CommandOptions{Line: script, Shell: true, Env: []string{"PATH=" + os.Getenv("PATH")}, Name: "RELOAD_CHECK_COMMAND"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := &recorder{}, &recorder{}
	h := start(t, Options{Roots: []string{dir}, Targets: []Target{
		{Name: "a", Reloader: a, Precheck: check},
		{Name: "b", Reloader: b, Precheck: check},
	}})
	countRuns := func() int {
		data, _ := os.ReadFile(runs)
		return strings.Count(string(data), "run\n")
	}

	write(t, conf, "good 2")
	h.waitFor("good 2 delivered to both", func() bool { return a.count() == 1 && b.count() == 1 })
	if n := countRuns(); n != 1 {
		t.Errorf("the check ran %d times for one content and two targets; want once", n)
	}
	if got := h.value("pollreload_last_reload_successful"); got != 1 {
		t.Errorf("last_reload_successful = %v after a passed check; want 1", got)
	}

	write(t, conf, "bad 3")
	h.waitFor("bad 3 rejected for both", func() bool { return h.sum("pollreload_reloads_total", "result", "rejected") == 2 })
	h.scans(5)
	if a.count() != 1 || b.count() != 1 {
		t.Errorf("reload calls a=%d b=%d after a refused check; want still 1 each (nothing sent)", a.count(), b.count())
	}
	if n := countRuns(); n != 2 {
		t.Errorf("the check ran %d times after the bad content and 5 more scans; want 2 (not again until the content changes)", n)
	}
	if got := h.value("pollreload_last_reload_successful"); got != 0 {
		t.Errorf("last_reload_successful = %v after a refused check; want 0", got)
	}
	if got := h.sum("pollreload_reloads_total", "result", "rejected"); got != 2 {
		t.Errorf(`reloads_total{result="rejected"} = %v; want 2 (one per target)`, got)
	}

	write(t, conf, "good 4")
	h.waitFor("good 4 delivered to both", func() bool { return a.count() == 2 && b.count() == 2 })
	if got := h.value("pollreload_last_reload_successful"); got != 1 {
		t.Errorf("last_reload_successful = %v after the fix; want 1", got)
	}
	if n := countRuns(); n != 3 {
		t.Errorf("the check ran %d times in all; want 3 (one per content)", n)
	}
}

// TestPrecheckNoVerdictRetries: a check command that does not exist is
// its own result, check_error, retried with backoff; nothing is delivered
// and nothing is counted rejected.
func TestPrecheckNoVerdictRetries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	write(t, conf, "v1")
	check, err := verify.NewCommand(verify.CommandOptions{Line: "/nonexistent/check-tool -t", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	h := start(t, Options{Roots: []string{dir}, Targets: []Target{{Name: "app", Reloader: rec, Precheck: check}}})
	write(t, conf, "v2")
	h.waitFor("two check errors (a retry)", func() bool { return h.sum("pollreload_reloads_total", "result", "check_error") >= 2 })
	if rec.count() != 0 {
		t.Errorf("%d reload calls without a verdict from the check; want none", rec.count())
	}
	if got := h.sum("pollreload_reloads_total", "result", "rejected"); got != 0 {
		t.Errorf(`reloads_total{result="rejected"} = %v; want 0: no verdict is no rejection`, got)
	}
	if got := h.value("pollreload_reload_pending"); got != 1 {
		t.Errorf("reload_pending = %v; want 1", got)
	}
}
