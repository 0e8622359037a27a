package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollreload/pollreload/config"
	"github.com/pollreload/pollreload/metrics"
	"github.com/pollreload/pollreload/poller"
)

// This file is the daemon: the poll loop, and the metrics server beside it.

// listenMetrics binds METRICS_ADDR, or returns nil when it is empty. It runs
// before anything else starts, so a port in use stops pollreload at once.
func listenMetrics(cfg config.Config) (net.Listener, error) {
	if cfg.MetricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", cfg.Name("METRICS_ADDR"), cfg.MetricsAddr, err)
	}
	return ln, nil
}

// serve runs the poll loop, and the metrics server on ln unless it is nil,
// until ctx ends. It closes ln.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger, opts poller.Options, ln net.Listener) error {
	reg := prometheus.NewRegistry()
	opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: version, Revision: commit})
	loop, err := poller.New(opts)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}

	var srv *http.Server
	var wg sync.WaitGroup
	if ln != nil {
		srv = newMetricsServer(metrics.Handler(reg, fixedHealth{health: loop, cfg: cfg}))
		logger.Info("serving metrics", "addr", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics server stopped", "err", err)
			}
		}()
	}
	logger.Info("watching", "dir", cfg.ConfigDir, "interval", cfg.PollInterval, "settle", cfg.SettleTime, "version", version)
	if cfg.ReloadForce && cfg.ReloadURL == "" {
		// The signaler's "sending the reload signal anyway, as forced" lines refer to this.
		logger.Info(cfg.Name("RELOAD_FORCE") + " is set: the reload signal is sent even to a process that has no handler for it")
	}
	err = loop.Run(ctx)
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 300*time.Millisecond)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			srv.Close()
		}
		wg.Wait()
	}
	logger.Info("stopped")
	return err
}

// fixedHealth is the poll loop's health as /healthz and /readyz show it:
// an error with a fix carries it, as the log lines do.
type fixedHealth struct {
	health metrics.Health
	cfg    config.Config
}

func (h fixedHealth) Healthy() error { return h.cfg.Explained(h.health.Healthy()) }
func (h fixedHealth) Ready() error   { return h.cfg.Explained(h.health.Ready()) }

// newMetricsServer bounds what each connection may hold: a client that
// sends its headers slowly, a request that never ends, a keep-alive
// connection left idle. Scrapers and probes reconnect at no cost; without
// these, anyone who can reach the port can pile up connections forever.
func newMetricsServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       metricsIdleTimeout,
		MaxHeaderBytes:    16 << 10,
	}
}

// metricsIdleTimeout closes a keep-alive connection after this long without
// a request. Prometheus then opens a new one on its next scrape, and
// kubelet's probes use a new connection each time anyway.
const metricsIdleTimeout = 10 * time.Second
