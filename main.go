// Command pollreload polls configuration directories and reloads the
// application when their content really changes. See pollreload --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/metrics"
	"github.com/pollreload/pollreload/poller"
	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...
// -X main.commitDate=..." (release/build.sh passes the tag, the full commit
// hash and the commit time in UTC, RFC 3339).
var (
	version    = "dev"
	commit     = "unknown"
	commitDate = "unknown"
)

// exitError carries an exit code other than 1 out of run.
type exitError struct {
	code int
	err  error // nil: nothing to print
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func main() {
	err := run(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err, if any, and maps it to the process exit code.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
		if ee.err == nil {
			return code
		}
	case errors.Is(err, errUsage):
		code = 2
	}
	fmt.Fprintln(stderr, "pollreload:", err)
	return code
}

var errUsage = errors.New("usage")

// usageErr is an error of the command line, exit code 2.
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// run is the whole program: it returns when ctx ends, a termination signal
// arrives, or (in wrapper mode) the child exits.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var child []string
	var flags []flagSetting
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "help":
			fmt.Fprint(stdout, usage())
			return nil
		case "--version", "version":
			fmt.Fprintln(stdout, versionLine())
			return nil
		case "copy":
			return runCopy(ctx, args[1:], stdout)
		case "hash":
			return runHash(ctx, args[1:], environ, stdout, stderr)
		case "check":
		default:
			var err error
			if flags, child, err = parseFlags(args); err != nil {
				return err
			}
		}
	}
	cfg, err := loadConfig(environ, flags)
	if err == nil {
		err = cfg.Validate(child != nil)
	}
	if err == nil {
		err = cfg.checkPaths()
	}
	if err == nil {
		err = cfg.checkMetricsAddr(ctx)
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	logger := newLogger(cfg, stderr)
	if len(cfg.ignored) > 0 {
		logger.Warn("ignoring unknown variables with pollreload's prefix", "names", cfg.ignored)
	}
	if len(cfg.notes) > 0 {
		logger.Info("flags accepted without effect; see pollreload --help", "flags", cfg.notes)
	}
	comp, err := newComponents(cfg, logger)
	if err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "check" {
		return runCheck(ctx, cfg, comp, stdout)
	}
	if child != nil {
		return runWrapper(ctx, cfg, logger, comp, child)
	}
	if err := probeVerifyURL(ctx, cfg, comp.verification, logger); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := listenMetrics(cfg)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, logger, comp.loop, ln)
}

// listenMetrics binds METRICS_ADDR, or returns nil when it is empty. It runs
// before anything else starts, so a port in use stops pollreload at once.
func listenMetrics(cfg Config) (net.Listener, error) {
	if cfg.MetricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("METRICS_ADDR=%q: %w", cfg.MetricsAddr, err)
	}
	return ln, nil
}

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
	// verification holds the HTTP client and RELOAD_VERIFY_URL's verifier.
	verification verification
	// check is RELOAD_CHECK_COMMAND, nil when it is not set; every target,
	// the wrapped child too, runs it before a delivery.
	check *verify.Command
	// loop has everything but Metrics, which serve adds, and, in wrapper
	// mode, the Reloader.
	loop poller.Options
}

func newComponents(cfg Config, logger *slog.Logger) (components, error) {
	h := hasher.New(hasher.Options{
		Logger:      logger,
		MaxFiles:    cfg.MaxFiles,
		MaxFileSize: int64(cfg.MaxFileSize),
		Include:     cfg.Include,
		Exclude:     cfg.Exclude,
		VerifyAfter: cfg.VerifyInterval,
		Advise:      func(err error) error { return advise(cfg, err) },
	})
	v, err := newVerification(cfg)
	if err != nil {
		return components{}, err
	}
	check, err := cfg.checkCommand(checkEnv(cfg.environ))
	if err != nil {
		return components{}, &exitError{code: 2, err: err}
	}
	targets, process, err := newTargets(cfg, v, check, logger)
	if err != nil {
		return components{}, err
	}
	return components{
		hasher:       h,
		process:      process,
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
			Advise:        func(err error) error { return advise(cfg, err) },
		},
	}, nil
}

// serve runs the poll loop, and the metrics server on ln unless it is nil,
// until ctx ends. It closes ln.
func serve(ctx context.Context, cfg Config, logger *slog.Logger, opts poller.Options, ln net.Listener) error {
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
		srv = newMetricsServer(metrics.Handler(reg, loop))
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
		logger.Info(cfg.name("RELOAD_FORCE") + " is set: the reload signal is sent even to a process that has no handler for it")
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

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.Level(logLevels[cfg.LogLevel])}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
