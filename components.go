package main

import (
	"io"
	"log/slog"

	"github.com/pollreload/pollreload/config"
	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/poller"
	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file is what a Config turns into: the logger, and the components
// (hasher, targets, loop options) every command is built from.

// components are what a Config turns into. newComponents is the one place
// that builds them, so that the daemon, the wrapper, check and hash scan
// and deliver alike.
type components struct {
	hasher *hasher.Hasher
	// process is the signal target by PROCESS_NAME or PID_FILE, nil when
	// there is none: for check's table of candidates.
	process *signaler.Process
	// targets are the reload targets, each with its verification; none in
	// wrapper mode (the child, started later, is the target) and for hash.
	targets []target
	// app is the process target's application profile, nil without one.
	app *appTarget
	// verification holds the HTTP client and RELOAD_VERIFY_URL's verifier.
	verification verification
	// check is RELOAD_CHECK_COMMAND, nil when it is not set; every target,
	// the wrapped child too, runs it before a delivery.
	check *verify.Command
	// loop has everything but Metrics, which serve adds, and, in wrapper
	// mode, the Reloader.
	loop poller.Options
}

func newComponents(cfg config.Config, logger *slog.Logger) (components, error) {
	h := hasher.New(hasher.Options{
		Logger:       logger,
		MaxFiles:     cfg.MaxFiles,
		MaxFileSize:  int64(cfg.MaxFileSize),
		MaxDepth:     cfg.MaxDepth,
		MaxTotalSize: int64(cfg.MaxTotalSize),
		Include:      cfg.Include,
		Exclude:      cfg.Exclude,
		VerifyAfter:  cfg.VerifyInterval,
	})
	v, err := newVerification(cfg)
	if err != nil {
		return components{}, err
	}
	check, err := cfg.CheckCommand(cfg.CommandEnv())
	if err != nil {
		return components{}, &exitError{code: 2, err: err}
	}
	targets, process, app, err := newTargets(cfg, v, check, logger)
	if err != nil {
		return components{}, err
	}
	return components{
		hasher:       h,
		process:      process,
		app:          app,
		targets:      targets,
		verification: v,
		check:        check,
		loop: poller.Options{
			Roots:         cfg.ConfigDir,
			Interval:      cfg.PollInterval,
			Settle:        cfg.SettleTime,
			ReloadOnStart: cfg.ReloadOnStart,
			MaxMissed:     cfg.HealthMissedScans,
			Scanner:       h,
			Targets:       loopTargets(targets),
			Logger:        logger,
		},
	}, nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Level()}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	// Every record that carries an error gets its fix (config.Fix).
	return slog.New(cfg.LogHandler(h))
}
