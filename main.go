// Command pollreload polls configuration directories and reloads the
// application when their content really changes. See pollreload --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/pollreload/pollreload/config"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// run is the whole program: it returns when ctx ends, a termination signal
// arrives, or (in wrapper mode) the child exits. Once the configuration is
// valid, the error it returns carries its fix (config.Fix), for the exit line.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) (err error) {
	var child []string
	var flags []config.FlagSetting
	if wantsHelp(args) {
		fmt.Fprint(stdout, config.Usage())
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
			if flags, child, err = config.ParseFlags(args[1:]); err != nil {
				return err
			}
			if child != nil {
				return usageErr("check takes no command: it checks the daemon's setup (drop-in flags and environment)")
			}
		default:
			var err error
			if flags, child, err = config.ParseFlags(args); err != nil {
				return err
			}
		}
	}
	cfg, err := config.Load(environ, flags)
	defer func() { err = cfg.Explained(err) }()
	if err == nil {
		err = cfg.Validate(child != nil)
	}
	if err == nil {
		err = cfg.CheckPaths()
	}
	if err == nil {
		err = cfg.CheckMetricsAddr(ctx)
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	logger := newLogger(cfg, stderr)
	if len(cfg.Ignored()) > 0 {
		logger.Warn("ignoring unknown variables with pollreload's prefix", "names", cfg.Ignored())
	}
	if len(cfg.Merged()) > 0 {
		logger.Warn("some entries are given more than once; each is watched or called once", "entries", cfg.Merged())
	}
	if sameDirs := cfg.SameDirectories(); len(sameDirs) > 0 {
		logger.Warn(cfg.Name("CONFIG_DIR")+" entries name the same directory through a symlink; both are watched, since the link may be repointed", "entries", sameDirs)
	}
	if len(cfg.Notes()) > 0 {
		logger.Info("flags accepted without effect; see pollreload --help", "flags", cfg.Notes())
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
