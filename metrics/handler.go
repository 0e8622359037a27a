package metrics

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health answers the probes. Healthy reports whether scans are still
// finishing on schedule; Ready whether the first scan (the baseline) is done.
// A nil error means yes; the error's text is the probe's answer.
type Health interface {
	Healthy() error
	Ready() error
}

// Handler serves /metrics from g and /healthz, /readyz from h on a mux of
// its own.
func Handler(g prometheus.Gatherer, h Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", probe(h.Healthy))
	mux.HandleFunc("GET /readyz", probe(h.Ready))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "pollreload: /metrics /healthz /readyz")
	})
	return mux
}

func probe(check func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := check(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	}
}
