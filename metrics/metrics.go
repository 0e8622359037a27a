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
// No metric carries a content digest: labels hold only bounded values.
package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

const namespace = "pollreload"

// Scan results, the values of the scans_total "result" label.
const (
	ScanOK      = "ok"      // every file of every root was read
	ScanPartial = "partial" // some files failed; their last good state was kept
	ScanError   = "error"   // a root could not be scanned at all
)

// BuildInfo labels the build_info gauge.
type BuildInfo struct {
	Version  string
	Revision string
}

// Metrics holds every metric pollreload exports.
type Metrics struct {
	Scans         *prometheus.CounterVec // result: ok, partial, error
	ScanErrors    *prometheus.CounterVec // kind: permission, not_found, stale, not_connected, io, limit, other
	Changes       prometheus.Counter
	Reloads       *prometheus.CounterVec // result: success, up_to_date, no_target, not_catching, permission, error
	BytesHashed   prometheus.Counter
	MissedScans   prometheus.Counter
	ScanDuration  prometheus.Histogram
	ReloadLatency prometheus.Histogram
	WatchedFiles  prometheus.Gauge
	WatchedBytes  prometheus.Gauge
	ReloadPending prometheus.Gauge
	LastReload    prometheus.Gauge
	// LastReloadOK is 1 after a delivered reload (and at start, when none
	// has failed yet), 0 after a refused or failed one: the
	// *_config_last_reload_successful convention.
	LastReloadOK prometheus.Gauge
	PollInterval prometheus.Gauge
	// ConfiguredInterval is POLL_INTERVAL itself, so that an alert can
	// tell how far PollInterval has been stretched or backed off.
	ConfiguredInterval prometheus.Gauge
}

// New registers pollreload's metrics, plus the Go runtime and process
// collectors, on reg.
func New(reg prometheus.Registerer, build BuildInfo) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Scans: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "scans_total",
			Help: "Scans of the watched paths, by result (ok, partial: some files unreadable, error: a root unreadable).",
		}, []string{"result"}),
		ScanErrors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "scan_errors_total",
			Help: "Read errors met while scanning, by kind. An error never counts as a deletion.",
		}, []string{"kind"}),
		Changes: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "changes_total",
			Help: "Confirmed content changes of the watched paths.",
		}),
		Reloads: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "reloads_total",
			Help: "Reload attempts, by result (success, up_to_date, no_target, not_catching, permission, error).",
		}, []string{"result"}),
		BytesHashed: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "bytes_hashed_total",
			Help: "File content bytes read and hashed. Stays flat while nothing changes.",
		}),
		MissedScans: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "missed_scans_total",
			Help: "Ticks skipped because the previous scan had not finished (a hung or slow filesystem).",
		}),
		ScanDuration: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "scan_duration_seconds",
			Help:    "Time to scan all watched paths once.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs .. 26s
		}),
		ReloadLatency: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "reload_latency_seconds",
			Help:    "Time from first seeing a change to delivering its reload.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
		}),
		WatchedFiles: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "watched_files",
			Help: "Regular files in the last snapshot of all watched paths.",
		}),
		WatchedBytes: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "watched_bytes",
			Help: "Summed size of the files in the last snapshot.",
		}),
		ReloadPending: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "reload_pending",
			Help: "1 while a detected change waits to be delivered.",
		}),
		LastReload: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "last_reload_success_timestamp_seconds",
			Help: "Unix time of the last delivered reload.",
		}),
		LastReloadOK: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "last_reload_successful",
			Help: "1 if the last reload attempt was delivered (or none has failed yet), 0 if it failed or was refused.",
		}),
		PollInterval: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "poll_interval_seconds",
			Help: "Effective poll interval: POLL_INTERVAL, stretched while scans take a large share of it, backed off while a watched path is unreadable.",
		}),
		ConfiguredInterval: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "configured_poll_interval_seconds",
			Help: "POLL_INTERVAL as configured; poll_interval_seconds above it means the interval is stretched or backed off.",
		}),
	}
	f.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version", "revision", "goversion"}).WithLabelValues(build.Version, build.Revision, runtime.Version()).Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.LastReloadOK.Set(1)

	// Pre-create the label values users alert on, so a rate() over them
	// starts at zero instead of being absent.
	for _, r := range []string{ScanOK, ScanPartial, ScanError} {
		m.Scans.WithLabelValues(r)
	}
	for _, r := range []string{"success", "up_to_date", "no_target", "not_catching", "permission", "error"} {
		m.Reloads.WithLabelValues(r)
	}
	return m
}
