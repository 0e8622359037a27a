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
	if wantsHelp(args) {
		fmt.Fprint(stdout, usage())
		return nil
	}
	if len(args) > 0 {
		switch args[0] {
		case "--version", "version":
			fmt.Fprintln(stdout, versionLine())
			return nil
		case "copy":
			return runCopy(ctx, args[1:], stdout)
		case "hash":
			return runHash(ctx, args[1:], environ, stdout, stderr)
		case "check":
			// check takes the daemon's drop-in flags, so that a runbook's
			// `kubectl exec ... pollreload check` can repeat the container's
			// args and check exactly what runs.
			var err error
			if flags, child, err = parseFlags(args[1:]); err != nil {
				return err
			}
			if child != nil {
				return usageErr("check takes no command: it checks the daemon's setup (drop-in flags and environment)")
			}
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
	if len(cfg.merged) > 0 {
		logger.Warn("some entries are given more than once; each is watched or called once", "entries", cfg.merged)
	}
	if sameDirs := cfg.sameDirectories(); len(sameDirs) > 0 {
		logger.Warn("CONFIG_DIR entries name the same directory through a symlink; both are watched, since the link may be repointed", "entries", sameDirs)
	}
	if len(cfg.notes) > 0 {
		logger.Info("flags accepted without effect; see pollreload --help", "flags", cfg.notes)
	}
	comp, err := newComponents(cfg, logger)
	if err != nil {
		return err
	}
	// A reader of stderr that goes away (a log shipper restarted, `| head`)
	// must not kill pollreload: by default Go dies by SIGPIPE on a write to
	// a broken stderr, losing the wrapped child's exit status. With SIGPIPE
	// notified, the write fails with EPIPE and the log line is lost instead.
	// A handler, unlike SIG_IGN, is not inherited by the child.
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE)
	defer signal.Stop(pipes)
	if err := refuseNotReloading(cfg, comp, child); err != nil {
		return err
	}
	if err := refuseChildrenUnfit(cfg, comp); err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "check" {
		return runCheck(ctx, cfg, comp, stdout)
	}
	if child != nil {
		return runWrapper(ctx, cfg, logger, comp, child)
	}
	logProfile(cfg, comp.app, logger)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	defer ignoreHangups(ctx, logger)()
	ln, err := listenMetrics(cfg)
	if err != nil {
		return err
	}
	// RELOAD_VERIFY_URL is probed beside the loop: an endpoint that never
	// answers must hold up neither /metrics nor the first scan. One that
	// answers without a reload metric still stops pollreload (exit 2).
	ctx, stopCause := context.WithCancelCause(ctx)
	defer stopCause(nil)
	go func() {
		if err := probeVerifyURL(ctx, cfg, comp.verification, logger); err != nil {
			stopCause(err)
		}
	}()
	err = serve(ctx, cfg, logger, comp.loop, ln)
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// ignoreHangups makes the daemon log and ignore SIGHUP until ctx ends, and
// returns a function that stops doing so. In a container SIGHUP is not a
// terminal hanging up: it is another reloader (or `pkill -HUP`) that matched
// pollreload by mistake, and dying with no log line on it (exit 129) would
// stop reloads for nothing. pollreload's own settings are read once at
// start, so there is nothing for SIGHUP to reload either. The wrapper
// forwards SIGHUP to its child instead.
func ignoreHangups(ctx context.Context, logger *slog.Logger) (stop func()) {
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hups:
				logger.Warn("received SIGHUP; ignoring it: pollreload reads its settings once at start (restart it to change them), and stops on SIGTERM or SIGINT")
			}
		}
	}()
	return func() {
		signal.Stop(hups)
		cancel()
		<-done
	}
}

// wantsHelp reports whether the command line asks for help: help as the
// command, or -h, --help or -help among the flags before any "--" (after
// it, they belong to the wrapped command). `pollreload --watched-dir=/d
// --help`, the container's args with --help added, prints the help too.
func wantsHelp(args []string) bool {
	if len(args) > 0 && args[0] == "help" {
		return true
	}
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help", "-help":
			return true
		}
	}
	return false
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

func newComponents(cfg Config, logger *slog.Logger) (components, error) {
	h := hasher.New(hasher.Options{
		Logger:       logger,
		MaxFiles:     cfg.MaxFiles,
		MaxFileSize:  int64(cfg.MaxFileSize),
		MaxDepth:     cfg.MaxDepth,
		MaxTotalSize: int64(cfg.MaxTotalSize),
		Include:      cfg.Include,
		Exclude:      cfg.Exclude,
		VerifyAfter:  cfg.VerifyInterval,
		Advise:       func(err error) error { return advise(cfg, err) },
	})
	v, err := newVerification(cfg)
	if err != nil {
		return components{}, err
	}
	check, err := cfg.checkCommand(checkEnv(cfg.environ))
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
