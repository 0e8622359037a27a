package signaler

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:9090/-/reload", "http://127.0.0.1:9090/-/reload"},
		{"https://ghp_T0KEN@host/-/reload", "https://xxxxx@host/-/reload"},
		{"https://user:hunter2@host/", "https://xxxxx:xxxxx@host/"},
		{"https://host/reload?token=s3cret&mode=full", "https://host/reload?token=xxxxx&mode=xxxxx"},
		{"https://host/reload?s3cretkey", "https://host/reload?xxxxx"},
		{"https://host/reload?token=a%20b;x=1&&empty=", "https://host/reload?token=xxxxx&&empty=xxxxx"},
		{"https://host/reload?", "https://host/reload?"},
		{"https://host/reload#access_token=s3cret", "https://host/reload#xxxxx"},
		{"https://u:p@host/?k=v#f", "https://xxxxx:xxxxx@host/?k=xxxxx#xxxxx"},
		{"mailto:s3cret@example.com", "mailto:xxxxx"},
		{"http://u:hunter2@host:port:bad/", "(unparsable URL)"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
	// Why not url.URL.Redacted: it shows a lone user name, the usual place
	// for a token.
	u, _ := url.Parse("https://ghp_T0KEN@host/")
	if !strings.Contains(u.Redacted(), "ghp_T0KEN") {
		t.Errorf("url.Redacted now masks a lone user (%s); RedactURL may be simplified", u.Redacted())
	}
}

// TestHTTPReloadScrubsErrorTexts uses a client whose own errors quote the
// URL (as net/http's *url.Error and redirect policies do) and checks that no
// secret of RELOAD_URL survives in the error or in debug logs, while the
// cause stays reachable.
func TestHTTPReloadScrubsErrorTexts(t *testing.T) {
	const user, pw, token = "ghp_userT0KEN", "pa55word", "qu3ryT0KEN"
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/moved", http.StatusFound)
	})
	client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		return fmt.Errorf("refusing redirect from %s (userinfo %s) to %s", via[0].URL, via[0].URL.User, req.URL)
	}}
	for _, raw := range []string{
		rec.withCreds(user, "/-/reload?token="+token),
		rec.withCreds(user+":"+pw, "/-/reload?token="+url.QueryEscape(token)+"&x="+token),
	} {
		var logs bytes.Buffer
		h, err := NewHTTP(HTTPOptions{URL: raw, Client: client,
			Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.Reload(t.Context(), time.Now())
		if err == nil || !strings.Contains(err.Error(), "refusing redirect from") {
			t.Fatalf("Reload = %v; want the client's redirect error", err)
		}
		for _, s := range []string{user, pw, token} {
			if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
				t.Errorf("secret %q revealed: error %q, logs %q", s, err, logs.String())
			}
		}
		t.Logf("error: %v", err)
	}
}
