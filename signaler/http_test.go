package signaler

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a reload endpoint on 127.0.0.1 that remembers requests.
type recorder struct {
	srv      *httptest.Server
	mu       sync.Mutex
	requests []string // "METHOD path user:password"
}

func newRecorder(t *testing.T, handler func(w http.ResponseWriter, r *http.Request)) *recorder {
	t.Helper()
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		rec.mu.Lock()
		rec.requests = append(rec.requests, r.Method+" "+r.URL.Path+" "+user+":"+pass)
		rec.mu.Unlock()
		handler(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: mux}}
	rec.srv.Start()
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) got() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.requests...)
}

// withCreds returns the server URL plus path, with userinfo inserted.
func (rec *recorder) withCreds(userinfo, path string) string {
	return strings.Replace(rec.srv.URL, "http://", "http://"+userinfo+"@", 1) + path
}

func TestHTTPReload(t *testing.T) {
	const secret = "s3cret-pw"
	status := func(code int, body string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}
	}
	tests := []struct {
		name        string
		handler     func(http.ResponseWriter, *http.Request)
		userinfo    string
		method      string
		wantRequest string
		wantErr     string // empty: success
		wantReason  string
	}{
		{name: "200 POST by default", handler: status(200, "ok"), userinfo: "admin:" + secret,
			wantRequest: "POST /-/reload admin:" + secret},
		{name: "204 with PUT", handler: status(204, ""), userinfo: "admin:" + secret, method: "put",
			wantRequest: "PUT /-/reload admin:" + secret},
		{name: "500 with body", handler: status(500, "error loading config:\n  line 3: bad"), userinfo: "admin:" + secret,
			wantRequest: "POST /-/reload admin:" + secret, wantReason: "rejected",
			wantErr: "POST http://xxxxx:xxxxx@127.0.0.1:PORT/-/reload: reload rejected: status 500 Internal Server Error: error loading config: line 3: bad"},
		{name: "404 long body cut", handler: status(404, strings.Repeat("x", 2000)),
			wantRequest: "POST /-/reload :", wantReason: "rejected",
			wantErr: "status 404 Not Found: " + strings.Repeat("x", answerLen) + "..."},
		{name: "body echoing the credential", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			fmt.Fprintf(w, "bad request to http://%s@%s%s", "admin:"+secret, r.Host, r.URL.Path)
		}, userinfo: "admin:" + secret, wantRequest: "POST /-/reload admin:" + secret, wantReason: "rejected",
			wantErr: "status 400 Bad Request: bad request to http://xxxxx:xxxxx@127.0.0.1:PORT/-/reload"},
		{name: "redirect not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, userinfo: secret, wantRequest: "POST /-/reload " + secret + ":", wantReason: "rejected",
			wantErr: "POST http://xxxxx@127.0.0.1:PORT/-/reload: reload rejected: status 302 Found"},
		{name: "503 is transient", handler: status(503, "starting up"), userinfo: "admin:" + secret,
			wantRequest: "POST /-/reload admin:" + secret, wantReason: "error",
			wantErr: "reload POST http://xxxxx:xxxxx@127.0.0.1:PORT/-/reload: status 503 Service Unavailable (retrying): starting up"},
		{name: "429 is transient", handler: status(429, ""),
			wantRequest: "POST /-/reload :", wantReason: "error",
			wantErr: "status 429 Too Many Requests (retrying)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, tt.handler)
			raw := rec.srv.URL + "/-/reload"
			if tt.userinfo != "" {
				raw = rec.withCreds(tt.userinfo, "/-/reload")
			}
			var logs bytes.Buffer
			h, err := NewHTTP(HTTPOptions{URL: raw, Method: tt.method,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			if err != nil {
				t.Fatal(err)
			}
			out, err := h.Reload(t.Context(), time.Now())
			wantErr := strings.ReplaceAll(tt.wantErr, "127.0.0.1:PORT", rec.srv.Listener.Addr().String())
			switch {
			case wantErr == "" && err != nil:
				t.Fatalf("Reload: %v", err)
			case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
				t.Fatalf("Reload error = %v; want one containing %q", err, wantErr)
			case wantErr == "" && (len(out.Signalled) != 1 || strings.Contains(out.Signalled[0].Name, secret)):
				t.Errorf("Outcome = %+v; want one target named without credentials", out)
			}
			if err != nil && Reason(err) != tt.wantReason {
				t.Errorf("Reason = %q; want %s", Reason(err), tt.wantReason)
			}
			if got := rec.got(); len(got) != 1 || got[0] != tt.wantRequest {
				t.Errorf("server saw %q; want [%q]", got, tt.wantRequest)
			}
			for what, text := range map[string]string{"error": errText(err), "logs": logs.String(), "target": targetNames(out)} {
				if strings.Contains(text, secret) {
					t.Errorf("%s reveal the credential: %s", what, text)
				}
			}
		})
	}
}

// TestHTTPReloadTransportErrorsHideCredentials covers failures where no
// response arrives: the client's own error text would carry the URL.
func TestHTTPReloadTransportErrorsHideCredentials(t *testing.T) {
	const secret = "t0ken-value"
	release := make(chan struct{})
	slow := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	closed := newRecorder(t, func(http.ResponseWriter, *http.Request) {})
	closedURL := closed.withCreds("user:"+secret, "/reload")
	closed.srv.Close()

	tests := []struct {
		name    string
		url     string
		timeout time.Duration
		wantErr string
	}{
		{"timeout", slow.withCreds(secret, "/reload"), 100 * time.Millisecond, "no response within 100ms: context deadline exceeded"},
		{"connection refused", closedURL, time.Second, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h, err := NewHTTP(HTTPOptions{URL: tt.url, Timeout: tt.timeout, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.Reload(t.Context(), time.Now())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Reload error = %v; want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
				t.Errorf("credential revealed: error %q, logs %q", err, logs.String())
			}
			if !strings.Contains(err.Error(), "xxxxx@127.0.0.1") {
				t.Errorf("error %q does not name the redacted URL", err)
			}
		})
	}
}

func TestNewHTTPRejects(t *testing.T) {
	tests := []struct {
		name    string
		opts    HTTPOptions
		wantErr string
	}{
		{"relative URL", HTTPOptions{URL: "/-/reload"}, "want an absolute http:// or https:// URL"},
		{"other scheme with credentials", HTTPOptions{URL: "ftp://u:hunter2@host/x"}, "URL ftp://xxxxx:xxxxx@host/x: want an absolute"},
		{"unparsable with credentials", HTTPOptions{URL: "http://u:hunter2@host:port:bad/"}, "URL is not a valid URL"},
		{"bad method", HTTPOptions{URL: "http://host/", Method: "PO ST"}, `Method "PO ST"`},
		{"negative timeout", HTTPOptions{URL: "http://host/", Timeout: -time.Second}, "Timeout -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHTTP(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewHTTP error = %v; want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func targetNames(o Outcome) string {
	var names []string
	for _, t := range o.Signalled {
		names = append(names, t.Name)
	}
	return strings.Join(names, " ")
}
