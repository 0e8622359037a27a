package signaler

import (
	"strings"
	"testing"
)

func TestExcerpt(t *testing.T) {
	long := strings.Repeat("é", answerLen) // 2 bytes each: the cut must not split one
	tests := []struct {
		in      string
		secrets []string
		want    string
	}{
		{"line 1\n\tline 2\x00\x1b[31m", nil, "line 1 line 2[31m"},
		{"see https://tok@example.com/x?key=abc&q=1", nil, "see https://xxxxx@example.com/x?key=xxxxx&q=xxxxx"},
		{"auth=hunter22", []string{"hunter22"}, "auth=xxxxx"},
		{long, nil, strings.Repeat("é", answerLen/2) + "..."},
	}
	for _, tt := range tests {
		if got := excerpt([]byte(tt.in), tt.secrets); got != tt.want {
			t.Errorf("excerpt(%.40q) = %.80q; want %.80q", tt.in, got, tt.want)
		}
	}
}
