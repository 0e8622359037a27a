package main

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pollreload/pollreload/config"
	"github.com/pollreload/pollreload/poller"
	"github.com/pollreload/pollreload/signaler"
)

// This file is wrapper mode, `pollreload -- CMD ARGS`: pollreload starts the
// application as its child, reloads it on change and is its init (tini is
// the model): it forwards signals, reaps orphans, follows job control at a
// terminal and exits with the child's status.

// forwardedSignals are the signals pollreload passes on to the child: every
// catchable one, as tini does, except those that concern pollreload itself:
//
//   - SIGCHLD reports pollreload's own children; it drives reaping;
//   - SIGPIPE, SIGXCPU and SIGXFSZ are raised by the kernel for pollreload's
//     own writes and resource limits;
//   - SIGURG is the Go runtime's preemption signal;
//   - SIGTTIN and SIGTTOU are raised when pollreload itself touches the
//     terminal from the background (after it gave the child the
//     foreground); they are ignored, so a log line cannot stop pollreload;
//   - SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT and SIGSYS are
//     faults of pollreload's own code (the Go runtime reports them);
//   - signals 32 to 34 belong to the C libraries (glibc, musl), and Go does
//     not let a program handle them; SIGKILL and SIGSTOP cannot be caught.
//
// SIGTSTP is forwarded, and stops the child, not pollreload.
func forwardedSignals() []os.Signal {
	sigs := []os.Signal{
		syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGWINCH,
		syscall.SIGCONT, syscall.SIGTSTP, syscall.SIGPWR, syscall.SIGIO,
		syscall.SIGVTALRM, syscall.SIGPROF, syscall.SIGSTKFLT,
	}
	for n := 35; n <= 64; n++ { // real-time signals up to SIGRTMAX
		sigs = append(sigs, syscall.Signal(n))
	}
	return sigs
}

// stopsReloads reports whether sig asks the child to terminate, so that no
// reload may follow it.
func stopsReloads(sig os.Signal) bool {
	return sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == syscall.SIGQUIT
}

// runWrapper runs argv as pollreload's child until it exits, and returns
// its exit status as an exitError.
func runWrapper(ctx context.Context, cfg config.Config, logger *slog.Logger, comp components, argv []string) error {
	// RELOAD_VERIFY_URL answering without a reload metric (someone else's
	// metrics) stops pollreload before the child exists too.
	if err := probeVerifyURL(ctx, cfg, comp.verification, logger); err != nil {
		return err
	}
	// A port in use stops pollreload before the child exists.
	ln, err := listenMetrics(cfg)
	if err != nil {
		return err
	}
	if err := signaler.BecomeSubreaper(); err != nil && os.Getpid() != 1 {
		logger.Warn("orphans of the child will not be reaped by pollreload", "err", err)
	}

	// Handlers are installed before the fork, so no signal is lost or kills
	// pollreload meanwhile; the child starts with the default dispositions.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, forwardedSignals()...)
	defer signal.Stop(sigs)
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	defer signal.Stop(children)

	// The child's application profile: RELOAD_APP, or its executable.
	exe, _ := exec.LookPath(argv[0])
	prof, detected := chooseProfile(cfg, exe, argv)
	app, err := newAppTarget(cfg, prof, detected, wrapperCmdline(argv))
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	if app != nil {
		cfg.ReloadSignal = config.SignalValue(profileSignal(cfg, prof))
		logProfile(cfg, app, logger)
	}
	c, err := signaler.StartChild(argv[0], argv[1:], signaler.ChildOptions{
		Signal: cfg.ReloadSignal.Signal(),
		Force:  cfg.ReloadForce,
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Logger: logger,
	})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return &exitError{code: startFailureCode(err), err: err}
	}
	// After the fork, so that the child still gets the default action.
	signal.Ignore(syscall.SIGTTIN, syscall.SIGTTOU)

	loopCtx, stopLoop := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLoop()
	loopDone := make(chan error, 1)
	opts := comp.loop
	opts.Targets = []poller.Target{{Name: c.Label(), Reloader: c, Verifier: processVerifier(cfg, comp.verification.newMetric(), app)}}
	if comp.check != nil {
		opts.Targets[0].Precheck = comp.check // the app's own tools are beside it
	} else if app != nil && app.check != nil {
		opts.Targets[0].Precheck = app.check
	}
	go func() { loopDone <- serve(loopCtx, cfg, logger, opts, ln) }()

	forward := func(s os.Signal) {
		// Once termination begins, no reload may follow: the loop stops
		// first, then the signal goes to the child.
		if stopsReloads(s) {
			stopLoop()
		}
		if s == syscall.SIGCONT {
			// The shell continued pollreload (`fg`): the terminal it gave
			// pollreload goes back to the child before the child runs on.
			if err := c.TakeTerminal(); err != nil {
				logger.Warn("cannot give the terminal back to the child", "err", err)
			}
		}
		name := signalName(s.(syscall.Signal))
		logger.Info("forwarding signal to child", "signal", name, "pid", c.PID())
		if err := c.Forward(s); err != nil {
			logger.Warn("cannot forward signal", "signal", name, "err", err)
		}
	}
	ctxDone := ctx.Done()
	for running := true; running; {
		select {
		case s := <-sigs:
			forward(s)
		case <-children:
			reapOrphans(c, logger)
			followJobControl(c, logger)
		case <-ctxDone:
			ctxDone = nil
			forward(syscall.SIGTERM)
		case <-c.Done():
			running = false
		}
	}
	stopLoop()
	loopErr := <-loopDone
	code, err := c.Wait()
	if err != nil {
		return err
	}
	if loopErr != nil {
		logger.Error("poll loop failed", "err", loopErr)
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// reapOrphans reaps the exited processes pollreload adopted.
func reapOrphans(c *signaler.Child, logger *slog.Logger) {
	reaped, err := signaler.ReapOrphans(c.PID())
	for _, pid := range reaped {
		logger.Debug("reaped orphan", "pid", pid)
	}
	if err != nil {
		logger.Warn("cannot reap orphans", "err", err)
	}
}

// followJobControl stops pollreload when the child, holding the terminal,
// was stopped (Ctrl-Z), so that the shell sees its job stop and takes the
// terminal back. The shell's SIGCONT continues pollreload, which forwards
// it and gives the child the terminal again.
func followJobControl(c *signaler.Child, logger *slog.Logger) {
	if !c.HasTerminal() {
		return
	}
	sig, stopped := c.Stopped()
	if !stopped {
		return
	}
	logger.Debug("child stopped; stopping too", "pid", c.PID(), "signal", signalName(sig))
	if err := unix.Kill(os.Getpid(), unix.SIGSTOP); err != nil {
		logger.Warn("cannot stop with the child", "err", err)
	}
}

// signalName is the signal's name, "SIGHUP", or "signal 40" for the
// real-time signals, which have none.
func signalName(s syscall.Signal) string {
	if name := unix.SignalName(s); name != "" {
		return name
	}
	return "signal " + strconv.Itoa(int(s))
}

// startFailureCode is the exit code of a command that could not be started,
// as shells and tini report it: 127 when it does not exist, 126 when it
// exists but cannot be executed.
func startFailureCode(err error) int {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return 127
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EISDIR):
		return 126
	}
	return 1
}
