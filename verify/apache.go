package verify

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// This file verifies an Apache httpd reload by its mod_status page
// (server-status?auto): ParentServerConfigGeneration counts the
// configurations the parent has loaded, so it moves on each graceful (USR1)
// or full (HUP) restart that took. Apache exits on a configuration it cannot
// parse, so a refusal shows as a dead target (the alive source) unless a
// check command (apache2 -t) kept the configuration from it.

// apacheConfirm is how long after the generation moved the parent must
// still run and the page still answer.
const apacheConfirm = time.Second

// statusBodyLimit bounds one read of a status page or socket answer.
const statusBodyLimit = 64 << 10

// ApacheOptions configures an ApacheStatus source.
type ApacheOptions struct {
	// URL is the server-status page, such as
	// http://127.0.0.1/server-status?auto ("?auto" is added when missing).
	URL string
	// Client sends the requests; nil means a client that follows no
	// redirect and gives up after each read's timeout.
	Client *http.Client
	// Timeout bounds the wait for the new generation (RELOAD_TIMEOUT);
	// zero means 5s.
	Timeout time.Duration
	// Interval is the time between two reads; zero means 200ms.
	Interval time.Duration
}

// ApacheStatus reads Apache's ParentServerConfigGeneration before and after
// a reload: success once it moved past its value before the signal.
type ApacheStatus struct {
	hooks             hooks
	url, redacted     string
	client            *http.Client
	timeout, interval time.Duration
}

// NewApacheStatus returns an ApacheStatus source.
func NewApacheStatus(opts ApacheOptions) (*ApacheStatus, error) {
	u := opts.URL
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return nil, fmt.Errorf("apache status URL %s: want http:// or https://, such as http://127.0.0.1/server-status?auto", signaler.RedactURL(u))
	}
	if !strings.Contains(u, "?") {
		u += "?auto"
	}
	redacted := signaler.RedactURL(u)
	if base, ok := strings.CutSuffix(u, "?auto"); ok {
		redacted = signaler.RedactURL(base) + "?auto" // mod_status's switch, no secret
	}
	a := &ApacheStatus{url: u, redacted: redacted, client: opts.Client,
		timeout: orDefault(opts.Timeout, 5*time.Second), interval: orDefault(opts.Interval, 200*time.Millisecond)}
	if a.client == nil {
		a.client = boundedClient(2 * time.Second)
	}
	return a, nil
}

// String names the source for logs and `check`.
func (a *ApacheStatus) String() string {
	return "apache server-status " + a.redacted + " (ParentServerConfigGeneration)"
}

// Generation reads ParentServerConfigGeneration once.
func (a *ApacheStatus) Generation(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return 0, fmt.Errorf("apache status %s: %w", a.redacted, err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("apache status %s: %w", a.redacted, withoutURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("apache status %s: status %s (is mod_status loaded, with SetHandler server-status and Require for pollreload's address?)", a.redacted, resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, statusBodyLimit))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == "ParentServerConfigGeneration" {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("apache status %s: ParentServerConfigGeneration %q: %w", a.redacted, strings.TrimSpace(v), err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("apache status %s: no ParentServerConfigGeneration line: is it mod_status's machine-readable page (?auto)?", a.redacted)
}

// prepare reads the generation before the signal.
func (a *ApacheStatus) prepare(ctx context.Context) func(context.Context, Delivery) error {
	var before int64
	berr := pollUntil(ctx, time.Now().Add(beforeRetry), 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		var err error
		before, err = a.Generation(ctx)
		return err == nil, err
	})
	return func(ctx context.Context, d Delivery) error {
		if berr != nil {
			// Without a baseline no reading can tell: say so once rather
			// than verify again forever.
			return &UnverifiedError{App: "apache", Reason: fmt.Sprintf("the generation before the reload is unknown (%v), so no reading after the signal can tell whether it took", berr)}
		}
		var last int64 = before
		err := pollUntil(ctx, d.At.Add(a.timeout), a.interval, func(ctx context.Context) (bool, error) {
			g, err := a.Generation(ctx)
			if err != nil {
				return false, err
			}
			last = g
			return g > before, nil
		})
		if err == nil && last > before {
			// The parent counts the generation before it parses the
			// configuration, and exits on one it cannot parse while its old
			// children still answer: the new generation must still answer a
			// moment later, from a parent that still runs.
			if err := sleepUntil(ctx, time.Now().Add(apacheConfirm)); err != nil {
				return err
			}
			for _, t := range d.Targets {
				if st, err := signaler.ReadProcStat("", t.PID); t.PID > 0 && (err != nil || st.State == 'Z' || t.StartTicks != 0 && st.StartTicks != t.StartTicks) {
					return &signaler.TargetDiedError{PID: t.PID, Name: t.Name, Signal: syscall.SIGUSR1, After: time.Since(d.At)}
				}
			}
			if g, err := a.Generation(ctx); err != nil || g < last {
				return fmt.Errorf("apache status %s: the generation moved to %d, then the page did not confirm it (%v)", a.redacted, last, err)
			}
			return nil
		}
		if err == nil {
			err = fmt.Errorf("apache status %s: ParentServerConfigGeneration still %d %s after the signal", a.redacted, last, a.timeout)
		}
		return err
	}
}

// boundedClient returns an HTTP client that follows no redirect and gives
// up after timeout.
func boundedClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// withoutURL drops the URL that net/http puts in its errors: the caller
// names the redacted one.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Before reads what After compares with; a failed reading is After's to
// report.
func (x *ApacheStatus) Before(ctx context.Context) { x.hooks.set(x.prepare(ctx)) }

// After waits for the application's verdict on the delivery.
func (x *ApacheStatus) After(ctx context.Context, d Delivery) error { return x.hooks.run(ctx, d) }

var _ Verifier = (*ApacheStatus)(nil)
