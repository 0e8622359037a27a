// Package metrics defines pollreload's Prometheus metrics and serves them,
// with health endpoints, on the program's own mux.
//
// Build the metrics once with New on a fresh registry, hand the *Metrics to
// the poll loop, and serve Handler from an http.Server:
//
//	reg := prometheus.NewRegistry()
//	m := metrics.New(reg, metrics.BuildInfo{Version: "1.0.0"})
//	srv := &http.Server{Handler: metrics.Handler(reg, health)}
//
// No metric carries a content digest: labels hold only bounded values, and
// pollreload_watched_bytes is rounded up to WatchedBytesBucket.
package metrics

import (
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/signaler"
)

const namespace = "pollreload"

// Scan results, the values of the scans_total "result" label.
const (
	ScanOK      = "ok"      // every file of every root was read
	ScanPartial = "partial" // some files failed; their last good state was kept
	ScanError   = "error"   // a root could not be scanned at all
)

// WatchedBytesBucket is the granularity of pollreload_watched_bytes: the
// summed size is rounded up to a multiple of it, so that the metrics port,
// which is not authenticated, does not tell a Secret's exact length.
const WatchedBytesBucket = 4096

// BuildInfo labels the build_info gauge.
type BuildInfo struct {
	Version  string
	Revision string
}

// Metrics holds every metric pollreload exports. The poll loop records
// through its methods; the label values are created up front, so recording
// allocates nothing and a rate() over any of them starts at zero.
type Metrics struct {
	scans         [3]prometheus.Counter // ok, partial, error
	scanErrors    map[string]prometheus.Counter
	scanErrorsVec *prometheus.CounterVec
	changes       prometheus.Counter
	reloadsVec    *prometheus.CounterVec // result, target
	reloadsMu     sync.Mutex
	reloads       map[string][]prometheus.Counter // by target, then by signaler.Result
	targetOK      map[string]bool                 // whether each target's last attempt did not fail
	bytesHashed   prometheus.Counter
	missedScans   prometheus.Counter
	scanDuration  prometheus.Histogram
	reloadLatency prometheus.Histogram
	watchedFiles  prometheus.Gauge
	watchedBytes  prometheus.Gauge
	reloadPending prometheus.Gauge
	lastReload    prometheus.Gauge
	lastReloadOK  prometheus.Gauge
	pollInterval  prometheus.Gauge
	// configuredInterval is POLL_INTERVAL itself, so that an alert can
	// tell how far pollInterval has been stretched or backed off.
	configuredInterval prometheus.Gauge
}

// New registers pollreload's metrics, plus the Go runtime and process
// collectors, on reg.
func New(reg prometheus.Registerer, build BuildInfo) *Metrics {
	f := promauto.With(reg)
	scans := f.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "scans_total",
		Help: "Scans of the watched paths, by result (ok, partial: some files unreadable, error: a root unreadable).",
	}, []string{"result"})
	reloads := f.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "reloads_total",
		Help: "Reload attempts, one per target and attempt, by result (success, up_to_date, no_target, not_catching, permission, error, rejected, target_died, check_error) and target (process name, or URL host and path).",
	}, []string{"result", "target"})
	m := &Metrics{
		scanErrorsVec: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "scan_errors_total",
			Help: "Read errors met while scanning, by kind. An error never counts as a deletion.",
		}, []string{"kind"}),
		changes: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "changes_total",
			Help: "Confirmed content changes of the watched paths.",
		}),
		bytesHashed: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "bytes_hashed_total",
			Help: "File content bytes read and hashed. Stays flat while nothing changes.",
		}),
		missedScans: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "missed_scans_total",
			Help: "Ticks skipped because the previous scan had not finished (a hung or slow filesystem).",
		}),
		scanDuration: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "scan_duration_seconds",
			Help:    "Time to scan all watched paths once.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs .. 26s
		}),
		reloadLatency: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "reload_latency_seconds",
			Help:    "Time from first seeing a change to delivering its reload.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
		}),
		watchedFiles: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "watched_files",
			Help: "Regular files in the last snapshot of all watched paths.",
		}),
		watchedBytes: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "watched_bytes",
			Help: "Summed size of the files in the last snapshot, rounded up to a multiple of 4096 bytes so that a Secret's exact length is not shown.",
		}),
		reloadPending: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "reload_pending",
			Help: "1 while a detected change waits to be delivered.",
		}),
		lastReload: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "last_reload_success_timestamp_seconds",
			Help: "Unix time of the last delivered reload.",
		}),
		lastReloadOK: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "last_reload_successful",
			Help: "1 if the last reload attempt was delivered (or none has failed yet), 0 if it failed or was refused.",
		}),
		pollInterval: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "poll_interval_seconds",
			Help: "Effective poll interval: the configured poll interval, stretched while scans take a large share of it, backed off while a watched path is unreadable.",
		}),
		configuredInterval: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "configured_poll_interval_seconds",
			Help: "The configured poll interval; poll_interval_seconds above it means the interval is stretched or backed off.",
		}),
	}
	f.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version", "revision", "goversion"}).WithLabelValues(build.Version, build.Revision, runtime.Version()).Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The 1 before any reload: nothing has failed yet.
	m.lastReloadOK.Set(1)

	for i, r := range []string{ScanOK, ScanPartial, ScanError} {
		m.scans[i] = scans.WithLabelValues(r)
	}
	m.reloadsVec = reloads
	m.reloads = map[string][]prometheus.Counter{}
	m.targetOK = map[string]bool{}
	// The hasher's bounded error kinds, created up front so a steady tick
	// resolves no label.
	kinds := hasher.ErrorKinds()
	m.scanErrors = make(map[string]prometheus.Counter, len(kinds))
	for _, k := range kinds {
		m.scanErrors[k] = m.scanErrorsVec.WithLabelValues(k)
	}
	return m
}

// Scan is what one finished scan of all roots found.
type Scan struct {
	Duration  time.Duration
	Err       bool  // a root could not be scanned at all
	Partial   bool  // some files could not be read
	Files     int64 // regular files in the snapshots
	Bytes     int64 // their summed size
	BytesRead int64 // content read by this scan
}

// ObserveScan records a finished scan. A failed scan updates only the
// counters and the duration: the watched files keep their last good figures.
func (m *Metrics) ObserveScan(s Scan) {
	m.scanDuration.Observe(s.Duration.Seconds())
	switch {
	case s.Err:
		m.scans[2].Inc()
		return
	case s.Partial:
		m.scans[1].Inc()
	default:
		m.scans[0].Inc()
	}
	if s.BytesRead > 0 {
		m.bytesHashed.Add(float64(s.BytesRead))
	}
	m.watchedFiles.Set(float64(s.Files))
	m.watchedBytes.Set(float64(roundUp(s.Bytes, WatchedBytesBucket)))
}

// ScanError counts one read error of the given kind (hasher.ErrorKind).
func (m *Metrics) ScanError(kind string) {
	c, ok := m.scanErrors[kind]
	if !ok {
		c = m.scanErrorsVec.WithLabelValues(kind)
	}
	c.Inc()
}

// MissedScan counts a tick skipped because a scan was still running.
func (m *Metrics) MissedScan() { m.missedScans.Inc() }

// Change counts a confirmed content change.
func (m *Metrics) Change() { m.changes.Inc() }

// SetPending says whether a change waits to be delivered.
func (m *Metrics) SetPending(pending bool) { m.reloadPending.Set(b2f(pending)) }

// SetInterval sets the effective poll interval.
func (m *Metrics) SetInterval(d time.Duration) { m.pollInterval.Set(d.Seconds()) }

// SetConfiguredInterval sets POLL_INTERVAL as configured.
func (m *Metrics) SetConfiguredInterval(d time.Duration) { m.configuredInterval.Set(d.Seconds()) }

// AddTargets pre-creates the reloads_total series of each target (a bounded
// label value: see signaler.TargetLabel), so a rate() over them starts at
// zero.
func (m *Metrics) AddTargets(targets ...string) {
	m.reloadsMu.Lock()
	defer m.reloadsMu.Unlock()
	for _, t := range targets {
		m.counters(t)
	}
}

// counters returns target's counters by result; m.reloadsMu is held.
func (m *Metrics) counters(target string) []prometheus.Counter {
	cs, ok := m.reloads[target]
	if !ok {
		for _, r := range signaler.Results() {
			cs = append(cs, m.reloadsVec.WithLabelValues(r.String(), target))
		}
		m.reloads[target] = cs
		m.targetOK[target] = true
	}
	return cs
}

// Reload counts one attempt to one target. last_reload_successful reads 0
// while the last attempt of any target Failed (a refused signal, a failed
// request, a rejected configuration, a dead target), and 1 again once each
// of those had a delivered one. Waits (no target, no handler yet) leave it
// alone.
func (m *Metrics) Reload(target string, r signaler.Result) {
	m.reloadsMu.Lock()
	defer m.reloadsMu.Unlock()
	if cs := m.counters(target); int(r) < len(cs) {
		cs[r].Inc()
	}
	switch {
	case r.Delivered():
		m.targetOK[target] = true
	case r.Failed():
		m.targetOK[target] = false
	default:
		return
	}
	ok := true
	for _, v := range m.targetOK {
		ok = ok && v
	}
	m.lastReloadOK.Set(b2f(ok))
}

// Delivered records a change delivered at at, latency after it was first
// seen.
func (m *Metrics) Delivered(at time.Time, latency time.Duration) {
	m.reloadLatency.Observe(latency.Seconds())
	m.lastReload.Set(float64(at.UnixNano()) / 1e9)
}

func roundUp(n, to int64) int64 {
	if n <= 0 {
		return 0
	}
	return (n + to - 1) / to * to
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
