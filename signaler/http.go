package signaler

import (
	"context"
	"errors"
	"fmt"
	"github.com/pollreload/pollreload/internal/logs"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file reloads by calling an HTTP endpoint (RELOAD_URL), as Prometheus'
// /-/reload or Alertmanager's expect.

// HTTPOptions configures an HTTP reloader.
type HTTPOptions struct {
	// URL is the endpoint to call (RELOAD_URL). Credentials in it are sent
	// but never logged or put in errors.
	URL string
	// Method is the request method; empty means POST.
	Method string
	// Timeout bounds one request; zero means 5s.
	Timeout time.Duration
	// Client sends the request; nil means NewHTTPClient(Auth), which does
	// not follow redirects, since a reload endpoint that redirects is
	// misconfigured and a POST turned into a GET would not reload anything.
	Client *http.Client
	// Auth configures the client when Client is nil. Its secrets are also
	// masked in the excerpt of a refusal, should the application echo them.
	Auth ClientOptions
	// Logger receives delivery logs; nil discards them.
	Logger *slog.Logger
}

// HTTP reloads by sending a request; any 2xx status is success.
type HTTP struct {
	url      string // with credentials, for the request only
	redacted string // for logs, errors and Target.Name
	scrubber urlScrubber
	method   string
	timeout  time.Duration
	client   *http.Client
	secrets  func() []string // masked in answers
	log      *slog.Logger
}

// NewHTTP returns an HTTP reloader, or an error if the URL, method or
// timeout is unusable. The errors name HTTPOptions' fields: the caller
// validates the settings the user gave first, and names them.
func NewHTTP(opts HTTPOptions) (*HTTP, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		// url.Parse quotes the whole input, credentials included.
		return nil, errors.New("new HTTP reloader: URL is not a valid URL")
	}
	redacted := redactParsed(u)
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("new HTTP reloader: URL %s: want an absolute http:// or https:// URL", redacted)
	}
	method := strings.ToUpper(strings.TrimSpace(opts.Method))
	if method == "" {
		method = http.MethodPost
	}
	if strings.IndexFunc(method, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return nil, fmt.Errorf("new HTTP reloader: Method %q: want a method such as POST, PUT or GET", opts.Method)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	if timeout < 0 {
		return nil, fmt.Errorf("new HTTP reloader: Timeout %s: want a positive duration", timeout)
	}
	client := opts.Client
	if client == nil {
		if client, err = NewHTTPClient(opts.Auth); err != nil {
			return nil, fmt.Errorf("new HTTP reloader: %w", err)
		}
	}
	secrets := NewRedactor(opts.URL, opts.Auth).Secrets
	log := logs.OrDiscard(opts.Logger)
	return &HTTP{url: u.String(), redacted: redacted, scrubber: newURLScrubber(u), method: method, timeout: timeout, client: client, secrets: secrets, log: log}, nil
}

// Reload sends one request. changedAt is unused: an endpoint has no start
// time to compare it with.
func (h *HTTP) Reload(ctx context.Context, _ time.Time) (Outcome, error) {
	out, err := h.reload(ctx)
	return out, h.scrubber.scrub(err)
}

// reload sends the request; Reload masks the URL's secrets in its error.
func (h *HTTP) reload(ctx context.Context) (Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, h.method, h.url, nil)
	if err != nil {
		return Outcome{}, fmt.Errorf("reload %s %s: %w", h.method, h.redacted, err)
	}
	req.Header.Set("User-Agent", "pollreload")
	resp, err := h.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL with only the password masked; keep
		// the cause and name the URL ourselves.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			uerr.URL = h.redacted
			err = uerr.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return Outcome{}, fmt.Errorf("reload %s %s: %w", h.method, h.redacted, &TimeoutError{Timeout: h.timeout, Err: err})
		}
		return Outcome{}, fmt.Errorf("reload %s %s: %w", h.method, h.redacted, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8*answerLen))
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Outcome{}, h.refusal(resp, body)
	}
	h.log.Debug("reload request succeeded", "url", h.redacted, "method", h.method, "status", resp.StatusCode)
	return Outcome{Signalled: []Target{{Name: h.redacted}}}, nil
}

// Describe says how the endpoint's answer is judged, for `pollreload
// check`.
func (h *HTTP) Describe() string {
	codes := make([]string, len(TransientStatuses))
	for i, c := range TransientStatuses {
		codes[i] = strconv.Itoa(c)
	}
	return fmt.Sprintf("a 2xx answer; %s and no answer are retried, any other status is a rejection", strings.Join(codes, ", "))
}
