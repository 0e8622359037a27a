package monitoring

import (
	"strings"
	"testing"
)

func TestVectorSelectors(t *testing.T) {
	cases := []struct {
		expr string
		want string
	}{
		{`up`, `up`},
		{`max_over_time(pollreload_last_reload_successful[5m]) == 0`, `pollreload_last_reload_successful`},
		{`sum without (result) (increase(pollreload_scans_total{result=~"partial|error"}[5m])) > 0`, `pollreload_scans_total{result=~"partial|error"}`},
		{`histogram_quantile(0.9, sum by (le) (rate(a_bucket{job=~"x"}[1m])))`, `a_bucket{job=~"x"}`},
		{`sum(rate(a[1m])) by (kind) / on (job) group_left (x) b offset 5m`, `a b`},
		{"increase(a[5m]) >= 3\nor\nsum without (result) (increase(b[10m])) == 0", `a b`},
		{`time() - max by (job) (c{l="a}b"} > 0)`, `c{l="a}b"}`},
		{`{__name__="x"} and bool 1e3`, `{__name__="x"}`},
		{`rate(x[5m:1m]) > Inf`, `x`},
	}
	for _, tc := range cases {
		if got := strings.Join(vectorSelectors(tc.expr), " "); got != tc.want {
			t.Errorf("vectorSelectors(%q) = %q; want %q", tc.expr, got, tc.want)
		}
	}
}

func TestWithBool(t *testing.T) {
	cases := []struct{ expr, want string }{
		{`a == 0`, `a == bool 0`},
		{`a{x!="1",y=~"2"} > 2`, `a{x!="1",y=~"2"} > bool 2`},
		{"a >= 3\nor\nb == 0", "a >= bool 3\nor\nb == bool 0"},
		{`a > bool 1`, `a > bool 1`},
		{`a / b`, `a / b`},
	}
	for _, tc := range cases {
		if got := withBool(tc.expr); got != tc.want {
			t.Errorf("withBool(%q) = %q; want %q", tc.expr, got, tc.want)
		}
	}
}

func TestSubstitute(t *testing.T) {
	values := map[string]string{"job": "pollreload", "instance": regexValue([]string{"127.0.0.1:9533"}), "__rate_interval": "1m"}
	got, err := substitute(`rate(x{job=~"$job", instance=~"${instance}"}[$__rate_interval])`, values)
	if want := `rate(x{job=~"pollreload", instance=~"127\\.0\\.0\\.1:9533"}[1m])`; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if _, err := substitute(`x{job=~"$jobb"}`, values); err == nil || !strings.Contains(err.Error(), "$jobb") {
		t.Errorf("got error %v; want one naming $jobb", err)
	}
	if got, want := regexValue([]string{"a.b", "c"}), `(a\\.b|c)`; got != want {
		t.Errorf("regexValue = %q; want %q", got, want)
	}
}
