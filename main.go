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
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/metrics"
	"github.com/pollreload/pollreload/poller"
	"github.com/pollreload/pollreload/signaler"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
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
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "help":
			fmt.Fprint(stdout, usage())
			return nil
		case "--version", "version":
			fmt.Fprintf(stdout, "pollreload %s (commit %s, %s)\n", version, commit, runtime.Version())
			return nil
		case "hash":
			return runHash(ctx, args[1:], stdout)
		case "--":
			if len(args) < 2 {
				return usageErr("-- needs a command to run, as in pollreload -- nginx -g 'daemon off;'")
			}
			child = args[1:]
		case "check":
		default:
			return usageErr("unknown argument %q; see pollreload --help", args[0])
		}
	}
	cfg, err := loadConfig(environ)
	if err == nil {
		err = cfg.Validate(child != nil)
	}
	if err == nil {
		err = cfg.checkPaths()
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	logger := newLogger(cfg, stderr)
	if len(args) > 0 && args[0] == "check" {
		return runCheck(ctx, cfg, stdout)
	}
	if child != nil {
		return runWrapper(ctx, cfg, logger, child)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reloader, err := newReloader(cfg, logger)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, logger, reloader)
}

// serve runs the poll loop and the metrics server until ctx ends.
func serve(ctx context.Context, cfg Config, logger *slog.Logger, reloader signaler.Reloader) error {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: version, Revision: commit})
	maxSize, _ := parseSize(cfg.MaxFileSize) // checked by Validate
	loop, err := poller.New(poller.Options{
		Roots:         cfg.ConfigDir,
		Interval:      cfg.PollInterval,
		Settle:        cfg.SettleTime,
		ReloadOnStart: cfg.ReloadOnStart,
		MaxMissed:     cfg.HealthMissedScans,
		Scanner: hasher.New(hasher.Options{
			Logger:      logger,
			MaxFiles:    cfg.MaxFiles,
			MaxFileSize: maxSize,
			Include:     cfg.Include,
			Exclude:     cfg.Exclude,
			VerifyAfter: cfg.VerifyInterval,
		}),
		Reloader: reloader,
		Metrics:  m,
		Logger:   logger,
	})
	if err != nil {
		return err
	}

	var srv *http.Server
	var wg sync.WaitGroup
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("METRICS_ADDR=%q: %w", cfg.MetricsAddr, err)
		}
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

func newReloader(cfg Config, logger *slog.Logger) (signaler.Reloader, error) {
	if cfg.ReloadURL != "" {
		return signaler.NewHTTP(signaler.HTTPOptions{
			URL:     cfg.ReloadURL,
			Method:  cfg.ReloadMethod,
			Timeout: cfg.ReloadTimeout,
			Logger:  logger,
		})
	}
	return signaler.NewProcess(processOptions(cfg, logger))
}

func processOptions(cfg Config, logger *slog.Logger) signaler.ProcessOptions {
	sig, _ := signaler.ParseSignal(cfg.ReloadSignal)  // checked by Validate
	pol, _ := signaler.ParsePolicy(cfg.ReloadTargets) // checked by Validate
	return signaler.ProcessOptions{
		Names:   cfg.ProcessName,
		PIDFile: cfg.PIDFile,
		Signal:  sig,
		Policy:  pol,
		Force:   cfg.ReloadForce,
		Logger:  logger,
	}
}

// runWrapper starts the application as a child, reloads it on change,
// forwards termination signals to it, and exits with its exit code.
func runWrapper(ctx context.Context, cfg Config, logger *slog.Logger, argv []string) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	sig, _ := signaler.ParseSignal(cfg.ReloadSignal)
	c, err := signaler.StartChild(argv[0], argv[1:], signaler.ChildOptions{
		Signal: sig,
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	exited := make(chan struct{})
	var code int
	var waitErr error
	go func() {
		code, waitErr = c.Wait()
		close(exited)
	}()

	loopCtx, stopLoop := context.WithCancel(context.WithoutCancel(ctx))
	loopDone := make(chan error, 1)
	go func() { loopDone <- serve(loopCtx, cfg, logger, c) }()

	// Once termination begins, no reload may follow: the loop stops first,
	// then the signal goes to the child.
	terminate := func(s os.Signal) {
		stopLoop()
		name := unix.SignalName(s.(syscall.Signal))
		logger.Info("forwarding signal to child", "signal", name)
		if err := c.Forward(s); err != nil {
			logger.Warn("cannot forward signal", "signal", name, "err", err)
		}
	}
	ctxDone := ctx.Done()
	for exited != nil {
		select {
		case s := <-sigs:
			terminate(s)
		case <-ctxDone:
			ctxDone = nil
			terminate(syscall.SIGTERM)
		case <-exited:
			exited = nil
		}
	}
	stopLoop()
	loopErr := <-loopDone
	if waitErr != nil {
		return fmt.Errorf("wait for %s: %w", argv[0], waitErr)
	}
	if loopErr != nil {
		logger.Error("poll loop failed", "err", loopErr)
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.Level(logLevels[cfg.LogLevel])}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
