package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/pollreload/pollreload/config"
	"github.com/pollreload/pollreload/poller"
	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file turns the configuration into reload targets: the process (by
// PROCESS_NAME or PID_FILE, or the wrapped child) and each RELOAD_URL entry,
// each with its verification.

// target is one reload target with its verification.
type target struct {
	label    string // the bounded metric label: process name or URL host and path
	raw      string // the RELOAD_URL entry, credentials included; "" for a process
	reloader signaler.Reloader
	verifier verify.Verifier        // nil: a delivery counts at once
	metric   *verify.MetricVerifier // nil unless RELOAD_VERIFY_URL verifies this target
	// check runs before every delivery of new content (RELOAD_CHECK_COMMAND);
	// one Command for all targets, so it runs once per content.
	check *verify.Command
}

// verification is what RELOAD_VERIFY* ask for, shared by all targets.
type verification struct {
	client *http.Client
	// metric probes RELOAD_VERIFY_URL at start and in check; each target
	// it verifies gets a verifier of its own (newMetric), as a verifier
	// keeps what it read before its target's delivery.
	metric *verify.MetricVerifier
}

// newMetric returns a MetricVerifier for one target, nil without
// RELOAD_VERIFY_URL; it shares what the URL answered last with metric.
func (v verification) newMetric() *verify.MetricVerifier {
	if v.metric == nil {
		return nil
	}
	return v.metric.ForTarget()
}

// newVerification builds the HTTP client (reading the credential files once
// to check them) and the metric verifier.
func newVerification(cfg config.Config) (verification, error) {
	var v verification
	if cfg.ReloadURL == "" && cfg.ReloadVerifyURL == "" {
		return v, nil
	}
	client, err := signaler.NewHTTPClient(cfg.ClientOptions())
	if err != nil {
		return v, &exitError{code: 2, err: err}
	}
	v.client = client
	if cfg.ReloadVerifyURL != "" {
		v.metric, err = verify.NewMetricVerifier(verify.MetricOptions{
			URL: cfg.ReloadVerifyURL, Metric: cfg.ReloadVerifyMetric, Client: client, Auth: cfg.ClientOptions(), Timeout: cfg.ReloadTimeout,
		})
		if err != nil {
			return v, &exitError{code: 2, err: err}
		}
	}
	return v, nil
}

// newTargets returns the targets of a daemon: the process first (it is the
// application RELOAD_VERIFY_URL reports on), then each RELOAD_URL. Without
// a process, RELOAD_VERIFY_URL verifies the first URL. check, when not
// nil, runs before every delivery to any of them.
func newTargets(cfg config.Config, v verification, check *verify.Command, logger *slog.Logger) ([]target, *signaler.Process, *appTarget, error) {
	var out []target
	var process *signaler.Process
	var app *appTarget
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
			return nil, nil, nil, err
		}
		exe, args := firstCandidate(p)
		prof, detected := chooseProfile(cfg, exe, args)
		if sig := profileSignal(cfg, prof); sig != cfg.ReloadSignal.Signal() {
			// The profile's signal (haproxy USR2, apache USR1).
			cfg.ReloadSignal = config.SignalValue(sig)
			if p, err = signaler.NewProcess(signaler.ProcessOptions{
				Names: cfg.ProcessName, PIDFile: cfg.PIDFile, Signal: sig,
				Policy: signaler.Policy(cfg.ReloadTargets), Force: cfg.ReloadForce, Logger: logger,
			}); err != nil {
				return nil, nil, nil, err
			}
		}
		if app, err = newAppTarget(cfg, prof, detected, processCmdline(p)); err != nil {
			return nil, nil, nil, err
		}
		process = p
		t := target{label: p.Label(), reloader: p, metric: v.newMetric(), check: check}
		if check == nil && app != nil && app.check != nil {
			t.check = app.check // the profile's: nginx -t, apache2 -t, sshd -t, haproxy -c
		}
		t.verifier = processVerifier(cfg, t.metric, app)
		out = append(out, t)
	}
	for _, raw := range cfg.ReloadURLs() {
		h, err := signaler.NewHTTP(signaler.HTTPOptions{
			URL: raw, Method: cfg.ReloadMethod, Timeout: cfg.ReloadTimeout, Client: v.client,
			Auth: cfg.ClientOptions(), Logger: logger,
		})
		if err != nil {
			return nil, nil, nil, err
		}
		t := target{label: h.Label(), raw: raw, reloader: h, check: check}
		if len(out) == 0 && v.metric != nil {
			t.metric = v.newMetric()
			t.verifier = t.metric
		}
		out = append(out, t)
	}
	return out, process, app, nil
}

// processVerifier returns the verification of a signal target (a process
// or the wrapped child): alive always, then children, the re-exec, the log,
// the command (verify_sources.go) and metrics (metric, when not nil) when
// asked for.
func processVerifier(cfg config.Config, metric *verify.MetricVerifier, app *appTarget) verify.Verifier {
	sig := cfg.ReloadSignal.Signal()
	if app != nil {
		sig = profileSignal(cfg, &app.profile)
	}
	vs := []verify.Verifier{verify.NewAliveVerifier(verify.AliveOptions{Signal: sig})}
	if strings.EqualFold(strings.TrimSpace(cfg.ReloadVerify), config.VerifyChildren) {
		vs = append(vs, verify.NewChildrenVerifier(verify.ChildrenOptions{Timeout: cfg.ReloadTimeout, Signal: sig}))
	}
	vs = append(vs, sourceVerifiers(cfg)...)
	if metric != nil {
		vs = append(vs, metric)
	}
	if app != nil && !ownVerification(cfg) {
		// The application's own evidence: "still alive" alone is not a
		// success for an application the profile knows.
		vs = append(vs, app.verifier)
	}
	return verify.All(vs...)
}

// probeVerifyURL looks at RELOAD_VERIFY_URL once at start: an answer without
// a reload metric is a configuration error (exit 2); no answer yet only a
// warning, as the application may be starting beside pollreload.
func probeVerifyURL(ctx context.Context, cfg config.Config, v verification, logger *slog.Logger) error {
	if v.metric == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ReloadTimeout)
	defer cancel()
	p, err := v.metric.Probe(ctx)
	switch {
	case errors.Is(err, verify.ErrNoVerifyMetric):
		return &exitError{code: 2, err: err} // run adds the fix
	case err != nil:
		logger.Warn(cfg.Name("RELOAD_VERIFY_URL")+" does not answer yet; reloads are verified once it does", "url", v.metric.URL(), "err", err)
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
		out[i] = poller.Target{Name: t.label, Reloader: t.reloader, Verifier: t.verifier}
		if t.check != nil {
			out[i].Precheck = t.check
		}
	}
	return out
}
