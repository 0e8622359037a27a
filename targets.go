package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/pollreload/pollreload/poller"
	"github.com/pollreload/pollreload/signaler"
)

// This file turns the configuration into reload targets: the process (by
// PROCESS_NAME or PID_FILE, or the wrapped child) and each RELOAD_URL entry,
// each with its verification.

// target is one reload target with its verification.
type target struct {
	label    string // the bounded metric label: process name or URL host and path
	reloader signaler.Reloader
	metric   *signaler.MetricVerifier // nil unless RELOAD_VERIFY_URL verifies this target
}

// verification is what RELOAD_VERIFY* ask for, shared by all targets.
type verification struct {
	client *http.Client
	metric *signaler.MetricVerifier
}

// newVerification builds the HTTP client (reading the credential files once
// to check them) and the metric verifier.
func newVerification(cfg Config) (verification, error) {
	var v verification
	if cfg.ReloadURL == "" && cfg.ReloadVerifyURL == "" {
		return v, nil
	}
	client, err := signaler.NewHTTPClient(cfg.clientOptions())
	if err != nil {
		return v, &exitError{code: 2, err: err}
	}
	v.client = client
	if cfg.ReloadVerifyURL != "" {
		v.metric, err = signaler.NewMetricVerifier(signaler.MetricOptions{
			URL: cfg.ReloadVerifyURL, Metric: cfg.ReloadVerifyMetric, Client: client, Timeout: cfg.ReloadTimeout,
		})
		if err != nil {
			return v, &exitError{code: 2, err: err}
		}
	}
	return v, nil
}

// newTargets returns the targets of a daemon: the process first (it is the
// application RELOAD_VERIFY_URL reports on), then each RELOAD_URL. Without
// a process, RELOAD_VERIFY_URL verifies the first URL.
func newTargets(cfg Config, v verification, logger *slog.Logger) ([]target, *signaler.Process, error) {
	var out []target
	var process *signaler.Process
	if len(cfg.ProcessName) > 0 || cfg.PIDFile != "" {
		p, err := signaler.NewProcess(signaler.ProcessOptions{
			Names:   cfg.ProcessName,
			PIDFile: cfg.PIDFile,
			Signal:  cfg.ReloadSignal.Signal(),
			Policy:  signaler.Policy(cfg.ReloadTargets),
			Force:   cfg.ReloadForce,
			Logger:  logger,
		})
		if err != nil {
			return nil, nil, err
		}
		process = p
		out = append(out, target{label: p.Label(), reloader: verifiedProcess(cfg, p, v, logger), metric: v.metric})
	}
	for _, raw := range cfg.reloadURLs() {
		h, err := signaler.NewHTTP(signaler.HTTPOptions{
			URL: raw, Method: cfg.ReloadMethod, Timeout: cfg.ReloadTimeout, Client: v.client,
			Auth: cfg.clientOptions(), Logger: logger,
		})
		if err != nil {
			return nil, nil, err
		}
		t := target{label: h.Label(), reloader: h}
		if len(out) == 0 && v.metric != nil {
			t.reloader, t.metric = signaler.Verified(h, logger, v.metric), v.metric
		}
		out = append(out, t)
	}
	return out, process, nil
}

// verifiedProcess wraps a signal target (a process or the wrapped child) in
// its verifiers: alive always, then children and metrics when asked for.
func verifiedProcess(cfg Config, r signaler.Reloader, v verification, logger *slog.Logger) signaler.Reloader {
	sig := cfg.ReloadSignal.Signal()
	vs := []signaler.Verifier{signaler.NewAliveVerifier(signaler.AliveOptions{Signal: sig})}
	if strings.EqualFold(strings.TrimSpace(cfg.ReloadVerify), verifyChildren) {
		vs = append(vs, signaler.NewChildrenVerifier(signaler.ChildrenOptions{Timeout: cfg.ReloadTimeout, Signal: sig}))
	}
	if v.metric != nil {
		vs = append(vs, v.metric)
	}
	return signaler.Verified(r, logger, vs...)
}

// probeVerifyURL looks at RELOAD_VERIFY_URL once at start: an answer without
// a reload metric is a configuration error (exit 2); no answer yet only a
// warning, as the application may be starting beside pollreload.
func probeVerifyURL(ctx context.Context, cfg Config, v verification, logger *slog.Logger) error {
	if v.metric == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ReloadTimeout)
	defer cancel()
	p, err := v.metric.Probe(ctx)
	switch {
	case errors.Is(err, signaler.ErrNoVerifyMetric):
		return &exitError{code: 2, err: err}
	case err != nil:
		logger.Warn("RELOAD_VERIFY_URL does not answer yet; reloads are verified once it does", "url", v.metric.URL(), "err", err)
	default:
		logger.Info("reloads are verified by the application's metrics", "url", v.metric.URL(), "metric", p.Timestamp, "successful_metric", p.Successful)
	}
	return nil
}

// loopTargets returns the targets as the poll loop takes them, each with
// its own pending, retry and verify state.
func loopTargets(ts []target) []poller.Target {
	out := make([]poller.Target, len(ts))
	for i, t := range ts {
		out[i] = poller.Target{Name: t.label, Reloader: t.reloader}
	}
	return out
}
