package testenv

import (
	"reflect"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Samples
	}{
		{
			name: "no labels",
			text: "# HELP up Up.\n# TYPE up gauge\nup 1\n",
			want: Samples{{Name: "up", Labels: map[string]string{}, Value: 1}},
		},
		{
			name: "labels and timestamp",
			text: `pollreload_reloads_total{result="success",x="y"} 3 1700000000000` + "\n",
			want: Samples{{Name: "pollreload_reloads_total", Labels: map[string]string{"result": "success", "x": "y"}, Value: 3}},
		},
		{
			name: "escapes in label values",
			text: `m{a="q\"uote",b="back\\slash",c="new\nline",d="{,}"} 2.5e-3`,
			want: Samples{{Name: "m", Labels: map[string]string{"a": `q"uote`, "b": `back\slash`, "c": "new\nline", "d": "{,}"}, Value: 0.0025}},
		},
		{
			name: "histogram lines and special values",
			text: "h_bucket{le=\"+Inf\"} 4\nh_sum 0.5\nh_count 4\ng NaN\nn -Inf\n",
			want: nil, // checked by length below: NaN never equals itself
		},
		{
			name: "trailing comma",
			text: `m{a="1",} 7`,
			want: Samples{{Name: "m", Labels: map[string]string{"a": "1"}, Value: 7}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMetrics(tt.text)
			if err != nil {
				t.Fatalf("ParseMetrics: %v", err)
			}
			if tt.want == nil {
				if len(got) != 5 {
					t.Fatalf("got %d samples; want 5", len(got))
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestParseMetricsErrors(t *testing.T) {
	tests := []struct{ name, text string }{
		{"no value", "up\n"},
		{"bad value", "up one\n"},
		{"unterminated labels", `m{a="1" 3`},
		{"unquoted value", `m{a=1} 3`},
		{"unterminated value", `m{a="1} 3`},
		{"extra fields", "up 1 2 3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := ParseMetrics(tt.text); err == nil {
				t.Errorf("ParseMetrics(%q) = %+v; want an error", tt.text, got)
			}
		})
	}
}

func TestSamplesSum(t *testing.T) {
	s, err := ParseMetrics(`
r_total{result="success"} 3
r_total{result="error"} 1
r_total{result="success",target="b"} 2
other 9
`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		metric    string
		labels    map[string]string
		want      float64
		wantFound bool
	}{
		{"all series", "r_total", nil, 6, true},
		{"label subset", "r_total", map[string]string{"result": "success"}, 5, true},
		{"exact", "r_total", map[string]string{"result": "success", "target": "b"}, 2, true},
		{"absent label value", "r_total", map[string]string{"result": "permission"}, 0, false},
		{"absent name", "nope", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := s.Sum(tt.metric, tt.labels)
			if got != tt.want || found != tt.wantFound {
				t.Errorf("Sum(%q, %v) = %v, %v; want %v, %v", tt.metric, tt.labels, got, found, tt.want, tt.wantFound)
			}
		})
	}
}
