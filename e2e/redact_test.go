package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// Secrets a RELOAD_URL may carry: a token as a lone user name (GitHub
// style), a password, and query values. None may appear in anything
// pollreload prints or serves.
const (
	loneUser    = "ghp_L0neUserT0ken"
	passUser    = "reloaduser"
	password    = "Pa55w0rdSecret"
	queryToken  = "QueryT0kenSecret"
	queryToken2 = "AnotherQueryS3cret"
)

var urlSecrets = []string{loneUser, passUser, password, queryToken, queryToken2}

// reloadServer is a real HTTP server on 127.0.0.1 that records the
// credentials each request brought, to prove the secrets were sent.
type reloadServer struct {
	*httptest.Server
	mu     sync.Mutex
	seen   []string
	status int
}

func newReloadServer(t *testing.T, status int) *reloadServer {
	rs := &reloadServer{status: status}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, _ := r.BasicAuth()
		rs.mu.Lock()
		rs.seen = append(rs.seen, fmt.Sprintf("%s %s:%s %s", r.Method, user, pw, r.URL.RawQuery))
		rs.mu.Unlock()
		w.WriteHeader(rs.status)
		fmt.Fprintf(w, "status %d", rs.status)
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *reloadServer) requests() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.seen...)
}

// assertNoSecret fails if any URL secret appears in text.
func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range urlSecrets {
		if strings.Contains(text, s) {
			t.Errorf("%s reveals %q:\n%s", what, s, text)
		}
	}
}

// TestURLSecretsNeverShown runs the real binary against a real HTTP server
// with tokens in the userinfo (a lone user and user:password) and in the
// query, at debug level in text and JSON: through successful deliveries,
// refused ones (500), unreachable ones (connection refused: net/http's
// *url.Error quotes the URL), `pollreload check`, /metrics and start-up
// errors. The requests carry the secrets; nothing pollreload shows does.
func TestURLSecretsNeverShown(t *testing.T) {
	ok := newReloadServer(t, http.StatusOK)
	refused := newReloadServer(t, http.StatusInternalServerError)
	closed := newReloadServer(t, http.StatusOK)
	closedHost := closed.Listener.Addr().String()
	closed.Close()
	withSecrets := func(host, userinfo string) string {
		return fmt.Sprintf("http://%s@%s/-/reload?token=%s&key=%s", userinfo, host, queryToken, queryToken2)
	}
	host := func(rs *reloadServer) string { return rs.Listener.Addr().String() }

	type daemonCase struct {
		name, format, url string
		userinfo          string        // for the subtest name
		server            *reloadServer // nil: nothing listens
		wantLog           string
	}
	var cases []daemonCase
	for _, format := range []string{"text", "json"} {
		for name, ui := range map[string]string{"lone_user": loneUser, "user_password": passUser + ":" + password} {
			cases = append(cases,
				daemonCase{"delivered", format, withSecrets(host(ok), ui), name, ok, "reload delivered"},
				daemonCase{"refused", format, withSecrets(host(refused), ui), name, refused, "status 500"},
				daemonCase{"unreachable", format, withSecrets(closedHost, ui), name, nil, "connection refused"},
			)
		}
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s/%s", tc.name, tc.format, tc.userinfo), func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "app.conf")
			if err := os.WriteFile(conf, []byte("v1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			before := 0
			if tc.server != nil {
				before = len(tc.server.requests())
			}
			pr := testenv.Start(t, map[string]string{
				"CONFIG_DIR": dir, "RELOAD_URL": tc.url, "POLL_INTERVAL": "100ms", "SETTLE_TIME": "100ms",
				"LOG_LEVEL": "debug", "LOG_FORMAT": tc.format, "RELOAD_TIMEOUT": "2s",
			})
			if err := os.WriteFile(conf, []byte("v2\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, deliveryTimeout, func() error {
				if !strings.Contains(pr.Output(), tc.wantLog) {
					return fmt.Errorf("no log line with %q yet", tc.wantLog)
				}
				return nil
			})
			if tc.server != nil {
				reqs := tc.server.requests()[before:]
				wantUser, wantPW := loneUser, ""
				if strings.Contains(tc.url, password) {
					wantUser, wantPW = passUser, password
				}
				want := fmt.Sprintf("POST %s:%s token=%s&key=%s", wantUser, wantPW, queryToken, queryToken2)
				if len(reqs) == 0 || reqs[0] != want {
					t.Fatalf("server saw %q; want %q first (the secrets must still be sent)", reqs, want)
				}
			}
			metrics, err := testenv.ScrapeText(context.Background(), pr.MetricsAddr)
			if err != nil {
				t.Fatal(err)
			}
			pr.Stop()
			assertNoSecret(t, "logs", pr.Output())
			assertNoSecret(t, "/metrics", metrics)
			if !strings.Contains(pr.Output(), "xxxxx") {
				t.Errorf("logs never name the URL, masked:\n%s", pr.Output())
			}
			for _, l := range strings.Split(pr.Output(), "\n") {
				if strings.Contains(l, tc.wantLog) {
					t.Logf("%s", l)
					break
				}
			}
		})
	}

	t.Run("check", func(t *testing.T) {
		for _, u := range []string{withSecrets(host(ok), loneUser), withSecrets(host(ok), passUser+":"+password), withSecrets(closedHost, loneUser)} {
			res := testenv.Run(t, time.Minute, map[string]string{"CONFIG_DIR": t.TempDir(), "RELOAD_URL": u, "LOG_LEVEL": "debug"}, "check")
			assertNoSecret(t, "check output", res.Stdout+res.Stderr)
			if !strings.Contains(res.Stdout, "xxxxx") {
				t.Errorf("check does not show the masked URL:\n%s", res.Stdout)
			}
			t.Logf("check (exit %d):\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
		}
	})

	t.Run("start errors", func(t *testing.T) {
		for _, u := range []string{
			"ftp://" + passUser + ":" + password + "@host/?token=" + queryToken,
			"ftp://" + loneUser + "@host/x?" + queryToken,
			"http://" + loneUser + "@host:port:bad/?token=" + queryToken,
		} {
			res := testenv.Run(t, time.Minute, map[string]string{"CONFIG_DIR": t.TempDir(), "RELOAD_URL": u, "LOG_LEVEL": "debug"})
			if res.ExitCode != 2 || !strings.Contains(res.Stderr, "RELOAD_URL") {
				t.Errorf("RELOAD_URL=<%d bytes>: exit %d, stderr %q; want exit 2 naming RELOAD_URL", len(u), res.ExitCode, res.Stderr)
			}
			assertNoSecret(t, "start error", res.Stdout+res.Stderr)
			t.Logf("exit %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
		}
	})
}
