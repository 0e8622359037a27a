package signaler

import (
	"strings"
	"testing"
)

func TestTargetLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nginx", "nginx"},
		{"http://127.0.0.1:9090/-/reload", "127.0.0.1:9090/-/reload"},
		{"https://admin:hunter2@prom.example:9090/-/reload?token=tok123#frag", "prom.example:9090/-/reload"},
		{"https://tok123@hooks.example/", "hooks.example/"},
		{"http://h", "h"},
		{"http://h/a/../b//c/", "h/b/c"},
		{"http://u:hunter2@host:port:bad/", "(invalid URL)"},
		{strings.Repeat("é", 100), strings.Repeat("é", 64)},
		{"bad\xffname", "bad?name"},
	}
	for _, tt := range tests {
		got := TargetLabel(tt.in)
		if got != tt.want {
			t.Errorf("TargetLabel(%q) = %q; want %q", tt.in, got, tt.want)
		}
		for _, secret := range []string{"hunter2", "tok123"} {
			if strings.Contains(got, secret) {
				t.Errorf("TargetLabel(%q) = %q reveals %s", tt.in, got, secret)
			}
		}
	}
}

func TestReloaderLabels(t *testing.T) {
	p, err := NewProcess(ProcessOptions{Names: []string{"nginx", "php-fpm"}})
	if err != nil {
		t.Fatal(err)
	}
	pf, err := NewProcess(ProcessOptions{PIDFile: "/run/app/app.pid"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHTTP(HTTPOptions{URL: "http://u:hunter2@127.0.0.1:9093/-/reload?x=1"})
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{p.Label(): "nginx,php-fpm", pf.Label(): "pidfile:app.pid", h.Label(): "127.0.0.1:9093/-/reload"} {
		if got != want {
			t.Errorf("Label = %q; want %q", got, want)
		}
	}
}
