package verify

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pollreload/pollreload/signaler"
)

// This file verifies a reload through the application's own Prometheus
// metrics (RELOAD_VERIFY_URL): Prometheus, Alertmanager, Thanos, Loki,
// blackbox_exporter and others export
//
//	<prefix>_config_last_reload_successful             1 or 0
//	<prefix>_config_last_reload_success_timestamp_seconds  Unix time
//
// and update both when they load a configuration.

// The suffixes of the two metrics, and the part of them RELOAD_VERIFY_METRIC
// may name a metric by.
const (
	timestampSuffix  = "_config_last_reload_success_timestamp_seconds"
	successfulSuffix = "_config_last_reload_successful"
	tsTail           = "_last_reload_success_timestamp_seconds"
	okTail           = "_last_reload_successful"
)

// acceptMetrics asks for OpenMetrics or the classic text format, nothing
// else: both are read by the same parser.
const acceptMetrics = "application/openmetrics-text;version=1.0.0;q=0.8,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

// maxMetricsBody bounds one scrape: an exporter with a huge exposition must
// not make pollreload's memory balloon.
const maxMetricsBody = 32 << 20

// ErrNoVerifyMetric is wrapped by the error of a RELOAD_VERIFY_URL that
// answered with metrics, but not with a reload metric to verify by: a
// configuration error, not a transient one.
// The error is a *NoMetricError.
var ErrNoVerifyMetric = errors.New("no reload metric at the verification URL")

// NoMetricError is a metrics URL that answered, but without the reload
// metric to verify by. The caller says which setting chooses the metric.
type NoMetricError struct {
	URL string // masked
	// Exactly one of these says what was found: Near lists the metrics
	// that end like a reload metric but lack the _config_ of the default
	// (when none has it, Near may be empty); Several lists the reload
	// metrics found when MetricOptions.Metric does not choose one; Missing
	// names the timestamp and success gauges of MetricOptions.Metric,
	// neither of which was there.
	Near    []string
	Several []string
	Missing []string
}

func (e *NoMetricError) Error() string {
	switch {
	case len(e.Several) > 0:
		return fmt.Sprintf("%v: %s has several reload metrics (%s)", ErrNoVerifyMetric, e.URL, strings.Join(e.Several, ", "))
	case len(e.Missing) > 0:
		return fmt.Sprintf("%v: %s has no metric %s", ErrNoVerifyMetric, e.URL, strings.Join(e.Missing, " or "))
	case len(e.Near) > 0:
		return fmt.Sprintf("%v: %s answered, but no metric name ends in %s; it has %s", ErrNoVerifyMetric, e.URL, timestampSuffix, strings.Join(e.Near, ", "))
	}
	return fmt.Sprintf("%v: %s answered, but no metric name ends in %s", ErrNoVerifyMetric, e.URL, timestampSuffix)
}

// Unwrap makes errors.Is(err, ErrNoVerifyMetric) hold.
func (e *NoMetricError) Unwrap() error { return ErrNoVerifyMetric }

// ScrapeError is a metrics URL that gave no reading while a reload was
// verified: no answer, an error status, or an unreadable body.
type ScrapeError struct {
	URL string // masked
	Err error
}

func (e *ScrapeError) Error() string { return fmt.Sprintf("verify reload at %s: %v", e.URL, e.Err) }

func (e *ScrapeError) Unwrap() error { return e.Err }

// NotMovedError is a reload the metrics did not confirm within
// MetricOptions.Timeout: the success timestamp did not move.
type NotMovedError struct {
	URL     string // masked
	Metric  string
	Before  string // the timestamp before the delivery, as read
	Timeout time.Duration
}

func (e *NotMovedError) Error() string {
	return fmt.Sprintf("verify reload at %s: %s did not move past %s within %s; the application may not have received the reload",
		e.URL, e.Metric, e.Before, e.Timeout)
}

// MetricOptions configures a MetricVerifier.
type MetricOptions struct {
	// URL is the application's metrics endpoint (RELOAD_VERIFY_URL).
	URL string
	// Metric names the metric to read (RELOAD_VERIFY_METRIC): either the
	// *_last_reload_success_timestamp_seconds or the *_last_reload_successful
	// gauge; the other is found by its name. Empty means the one metric
	// whose name ends in _config_last_reload_success_timestamp_seconds.
	Metric string
	// Client sends the scrapes; nil means NewHTTPClient(Auth).
	Client *http.Client
	// Auth configures the client when Client is nil, and names the
	// secrets (token, password, header values) masked in the answers
	// either way: give it whenever the client uses it.
	Auth signaler.ClientOptions
	// Timeout bounds the wait for the app's verdict (RELOAD_TIMEOUT); zero
	// means 5s.
	Timeout time.Duration
	// Interval is the time between scrapes while waiting; zero means 200ms.
	Interval time.Duration
}

// MetricVerifier reads the application's own reload metrics after a
// delivery: success once the success timestamp moved past what it was
// before the delivery (or, without that baseline, reached the delivery
// time); rejected once *_last_reload_successful reads 0 where it read 1
// before, or still reads 0 at the timeout.
type MetricVerifier struct {
	url      string // with credentials, for requests only
	redacted string
	redactor signaler.Redactor // masks the secrets in answers
	want     string            // the metric name asked for (MetricOptions.Metric), or ""
	client   *http.Client
	timeout  time.Duration
	interval time.Duration

	// shared is what every verifier of this URL (ForTarget) saw last.
	shared *lastReading

	mu      sync.Mutex // Before and After run on the loop's goroutines
	pending *baseline  // started by the last Before
	prev    stamped    // shared's reading when it started
}

// stamped is a reading with the time its scrape ended.
type stamped struct {
	r    reading
	at   time.Time
	have bool
}

// lastReading is the latest successful scrape of a URL.
type lastReading struct {
	mu sync.Mutex
	s  stamped
}

func (l *lastReading) get() stamped {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s
}

func (l *lastReading) set(r reading, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.s.have || at.After(l.s.at) {
		l.s = stamped{r: r, at: at, have: true}
	}
}

// baseline is Before's scrape, which runs beside the delivery.
type baseline struct {
	done chan struct{}
	r    reading
	err  error
	at   time.Time // when it ended
}

// NewMetricVerifier checks the options; it sends no request (see Probe).
func NewMetricVerifier(opts MetricOptions) (*MetricVerifier, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		// url.Parse quotes the whole input, credentials included.
		return nil, errors.New("MetricOptions.URL is not a URL; want an absolute http:// or https:// URL of the application's metrics")
	}
	redacted := signaler.RedactURL(opts.URL)
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("MetricOptions.URL %q: want an absolute http:// or https:// URL of the application's metrics", redacted)
	}
	want := strings.TrimSpace(opts.Metric)
	if want != "" && (!model.LegacyValidation.IsValidMetricName(want) || !strings.HasSuffix(want, tsTail) && !strings.HasSuffix(want, okTail)) {
		return nil, fmt.Errorf("MetricOptions.Metric %q: want the name of a gauge ending in %s or %s", opts.Metric, tsTail, okTail)
	}
	client := opts.Client
	if client == nil {
		if client, err = signaler.NewHTTPClient(opts.Auth); err != nil {
			return nil, err
		}
	}
	m := &MetricVerifier{url: u.String(), redacted: redacted, redactor: signaler.NewRedactor(opts.URL, opts.Auth), want: want, client: client, timeout: opts.Timeout, interval: opts.Interval, shared: &lastReading{}}
	if m.timeout <= 0 {
		m.timeout = 5 * time.Second
	}
	if m.interval <= 0 {
		m.interval = 200 * time.Millisecond
	}
	return m, nil
}

// ForTarget returns a verifier of the same URL for another target: it has
// its own Before and After state, and shares what the URL answered last
// (Probe's reading included), the baseline of a delivery whose own
// reading came too late.
func (m *MetricVerifier) ForTarget() *MetricVerifier {
	return &MetricVerifier{url: m.url, redacted: m.redacted, redactor: m.redactor, want: m.want, client: m.client,
		timeout: m.timeout, interval: m.interval, shared: m.shared}
}

// URL returns the verification URL with credentials and query values
// masked.
func (m *MetricVerifier) URL() string { return m.redacted }

// MetricProbe is what one scrape of the verification URL showed.
type MetricProbe struct {
	// Timestamp is the name of the success timestamp metric, and
	// LastSuccess its value.
	Timestamp   string
	LastSuccess time.Time
	// Successful is the name of the 0/1 gauge, empty if the app has none;
	// OK is its value.
	Successful string
	OK         bool
}

// Probe scrapes the URL once and says which metric it verifies by. An
// answer without such a metric is an error wrapping ErrNoVerifyMetric; an
// unreachable URL or a non-200 answer is another error, as the application
// may just not be up yet.
func (m *MetricVerifier) Probe(ctx context.Context) (MetricProbe, error) {
	r, err := m.scrape(ctx)
	if err != nil {
		return MetricProbe{}, err
	}
	p := MetricProbe{Timestamp: r.tsName, Successful: r.okName, OK: r.ok == 1}
	if r.hasTS {
		sec, frac := math.Modf(r.ts)
		p.LastSuccess = time.Unix(int64(sec), int64(frac*1e9))
	}
	if !r.hasOK {
		p.Successful = ""
	}
	return p, nil
}

// reading is one scrape's values of the two metrics.
type reading struct {
	tsName, okName string
	ts, ok         float64
	hasTS, hasOK   bool
}

// Before starts reading the metrics, as the baseline a success must move
// past, and returns at once: the reading runs beside the delivery, so an
// endpoint that is slow or never answers delays the verdict, never the
// reload. After uses that reading when it ended before the delivery
// started; otherwise the latest reading this URL gave before it (the last
// verification's, or the start-up probe's); without any, the delivery
// time (see After).
func (m *MetricVerifier) Before(ctx context.Context) {
	b := &baseline{done: make(chan struct{})}
	m.mu.Lock()
	m.pending, m.prev = b, m.shared.get()
	m.mu.Unlock()
	go func() {
		defer close(b.done)
		sctx, cancel := context.WithTimeout(ctx, m.timeout)
		defer cancel()
		b.r, b.err = m.scrape(sctx)
		b.at = time.Now()
	}()
}

// After scrapes until the success timestamp moves past the baseline (nil),
// the success gauge shows a refusal (*signaler.RejectedError) or the
// timeout passes (an error: the verdict is unknown). Without a baseline, a
// success timestamp at or after the delivery's start counts (in whole
// seconds for an application that exports whole seconds).
func (m *MetricVerifier) After(ctx context.Context, d Delivery) error {
	m.mu.Lock()
	b, prev := m.pending, m.prev
	m.mu.Unlock()
	base := prev
	if b != nil {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		switch {
		case errors.Is(b.err, ErrNoVerifyMetric):
			return b.err
		case b.err == nil && !b.at.After(d.At):
			base = stamped{r: b.r, at: b.at, have: true}
		}
	}
	if base.have && base.at.After(d.At) {
		base.have = false // read after the delivery began: not a baseline
	}
	return m.wait(ctx, d, base.r, base.have)
}

func (m *MetricVerifier) wait(ctx context.Context, d Delivery, before reading, haveBefore bool) error {
	deadline := d.At.Add(m.timeout)
	var last reading
	var lastErr error
	for {
		sctx, cancel := context.WithDeadline(ctx, deadline.Add(time.Second))
		r, err := m.scrape(sctx)
		cancel()
		last, lastErr = r, err
		switch {
		case errors.Is(err, ErrNoVerifyMetric):
			return err
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
		case r.hasTS && accepted(r.ts, before, haveBefore, d.At):
			return nil
		case r.hasOK && r.ok == 0 && haveBefore && before.hasOK && before.ok != 0:
			// It read 1 before and 0 now: this delivery was refused.
			return m.rejected(r)
		}
		if !time.Now().Before(deadline) {
			break
		}
		if err := sleepUntil(ctx, earliest(time.Now().Add(m.interval), deadline)); err != nil {
			return err
		}
	}
	switch {
	case lastErr != nil:
		return &ScrapeError{URL: m.redacted, Err: lastErr}
	case last.hasOK && last.ok == 0:
		// It read 0 already before (an earlier refusal) and its success
		// time did not move within the timeout: refused again.
		return m.rejected(last)
	}
	return &NotMovedError{URL: m.redacted, Metric: last.tsName, Before: formatUnix(before.ts, haveBefore && before.hasTS), Timeout: m.timeout}
}

func (m *MetricVerifier) rejected(r reading) error {
	return &signaler.RejectedError{Target: m.redacted,
		Answer: fmt.Sprintf("%s = 0 after the reload (%s = %s): the application kept its old configuration; its log says why",
			r.okName, r.tsName, formatUnix(r.ts, r.hasTS))}
}

// accepted reports whether a success timestamp ts shows a reload after the
// delivery: past the baseline when there is one (immune to clock skew
// between pollreload and a remote app), else at or after the delivery.
// Applications that export whole seconds are compared with the delivery's
// second.
func accepted(ts float64, before reading, haveBefore bool, at time.Time) bool {
	if haveBefore && before.hasTS {
		return ts > before.ts
	}
	if ts == math.Trunc(ts) {
		return ts >= float64(at.Unix())
	}
	return ts >= float64(at.UnixNano())/1e9
}

func formatUnix(ts float64, ok bool) string {
	if !ok {
		return "(absent)"
	}
	sec, frac := math.Modf(ts)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC().Format(time.RFC3339Nano)
}

// scrape fetches and parses the metrics, and picks the reload metrics.
func (m *MetricVerifier) scrape(ctx context.Context) (reading, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return reading{}, errors.New("build request")
	}
	req.Header.Set("Accept", acceptMetrics)
	resp, err := m.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // it repeats the URL with only the password masked
		}
		return reading{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 8*512))
		answer := m.redactor.Excerpt(b)
		if answer != "" {
			answer = ": " + answer
		}
		return reading{}, fmt.Errorf("GET %s: status %s%s", m.redacted, resp.Status, answer)
	}
	fams, err := parseReloadMetrics(io.LimitReader(resp.Body, maxMetricsBody))
	if err != nil {
		return reading{}, fmt.Errorf("GET %s: %w", m.redacted, err)
	}
	r, err := m.pick(fams)
	if err == nil {
		m.shared.set(r, time.Now())
	}
	return r, err
}

// pick finds the two metrics among the families.
func (m *MetricVerifier) pick(fams map[string]*dto.MetricFamily) (reading, error) {
	var r reading
	switch {
	case strings.HasSuffix(m.want, tsTail):
		r.tsName = m.want
		r.okName = strings.TrimSuffix(m.want, tsTail) + okTail
	case strings.HasSuffix(m.want, okTail):
		r.okName = m.want
		r.tsName = strings.TrimSuffix(m.want, okTail) + tsTail
	default:
		var found []string
		for name := range fams {
			if strings.HasSuffix(name, timestampSuffix) {
				found = append(found, name)
			}
		}
		slices.Sort(found)
		switch len(found) {
		case 0:
			var near []string
			for name := range fams {
				if strings.HasSuffix(name, okTail) || strings.HasSuffix(name, tsTail) {
					near = append(near, name)
				}
			}
			slices.Sort(near)
			return reading{}, &NoMetricError{URL: m.redacted, Near: near}
		case 1:
		default:
			return reading{}, &NoMetricError{URL: m.redacted, Several: found}
		}
		r.tsName = found[0]
		r.okName = strings.TrimSuffix(found[0], timestampSuffix) + successfulSuffix
	}
	r.ts, r.hasTS = extreme(fams[r.tsName], math.Max)
	r.ok, r.hasOK = extreme(fams[r.okName], math.Min)
	if !r.hasTS && !r.hasOK {
		return reading{}, &NoMetricError{URL: m.redacted, Missing: []string{r.tsName, r.okName}}
	}
	return r, nil
}

// extreme folds the values of a family's series (an app may label them,
// one per config file) with f: the newest success time, the worst state.
func extreme(f *dto.MetricFamily, fold func(a, b float64) float64) (float64, bool) {
	if f == nil {
		return 0, false
	}
	var v float64
	n := 0
	for _, s := range f.GetMetric() {
		var x float64
		switch {
		case s.GetGauge() != nil:
			x = s.GetGauge().GetValue()
		case s.GetUntyped() != nil:
			x = s.GetUntyped().GetValue()
		case s.GetCounter() != nil:
			x = s.GetCounter().GetValue()
		default:
			continue
		}
		if math.IsNaN(x) {
			continue
		}
		if n == 0 {
			v = x
		} else {
			v = fold(v, x)
		}
		n++
	}
	return v, n > 0
}

// parseReloadMetrics parses an exposition, text or OpenMetrics, with
// prometheus/common's text parser. Only the lines of reload metrics are
// handed to it: OpenMetrics constructs that parser does not know (info and
// stateset types, exemplars, `# EOF`) can then only appear in metrics this
// package does not read, and a huge exposition costs one pass of line
// splitting.
func parseReloadMetrics(r io.Reader) (map[string]*dto.MetricFamily, error) {
	var kept bytes.Buffer
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if reloadMetricLine(line) {
			kept.Write(line)
			kept.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&kept)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return fams, nil
}

// reloadMetricLine reports whether a line is a sample, HELP or TYPE line of
// a metric whose name ends like a reload metric.
func reloadMetricLine(line []byte) bool {
	var name []byte
	if rest, ok := bytes.CutPrefix(line, []byte("#")); ok {
		f := bytes.Fields(rest)
		if len(f) < 2 || (string(f[0]) != "HELP" && string(f[0]) != "TYPE") {
			return false
		}
		name = f[1]
	} else {
		end := bytes.IndexAny(line, "{ \t")
		if end < 0 {
			return false
		}
		name = line[:end]
	}
	return bytes.HasSuffix(name, []byte(okTail)) || bytes.HasSuffix(name, []byte(tsTail))
}

// Describe says what the check does; the caller names the setting.
func (m *MetricVerifier) Describe() string {
	return fmt.Sprintf("%s: its success timestamp must move within %s", m.redacted, m.timeout)
}
