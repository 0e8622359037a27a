package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startTimeout bounds how long Start waits for pollreload's first scan.
const startTimeout = 60 * time.Second

// Pollreload is a running pollreload daemon.
type Pollreload struct {
	*Process
	// MetricsAddr is the host:port of its metrics server, or "" when the
	// test disabled it with METRICS_ADDR="".
	MetricsAddr string
}

// Start runs the pollreload binary (see BuildPollreload) with args and with
// env as its only configuration, as a user does. Unless env sets
// METRICS_ADDR (or POLLRELOAD_METRICS_ADDR) it gets a free port on
// 127.0.0.1, and Start returns once /metrics shows a first scan, so that the
// daemon's baseline is taken before the test changes anything.
//
// At cleanup pollreload gets SIGTERM and must exit with status 0 within the
// grace period and without a data race report; otherwise the test fails.
func Start(t testing.TB, env map[string]string, args ...string) *Pollreload {
	t.Helper()
	bin := BuildPollreload(t)
	env = copyEnv(env)
	addr, set := env["METRICS_ADDR"]
	if v, ok := env["POLLRELOAD_METRICS_ADDR"]; ok {
		addr, set = v, true
	}
	if !set {
		addr = FreeAddr(t)
		env["METRICS_ADDR"] = addr
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = envList(baseEnv(), env)
	p := &Pollreload{Process: Spawn(t, "pollreload", cmd), MetricsAddr: addr}
	t.Cleanup(func() { p.checkExit(t) })
	if addr != "" {
		p.waitFirstScan(t)
	}
	return p
}

// waitFirstScan waits until the daemon has finished a scan (of any result).
func (p *Pollreload) waitFirstScan(t testing.TB) {
	t.Helper()
	WaitFor(t, startTimeout, func() error {
		if p.Exited() {
			t.Fatalf("pollreload exited during start (%v):\n%s", p.Wait(0), p.Output())
		}
		s, err := Scrape(context.Background(), p.MetricsAddr)
		if err != nil {
			return err
		}
		if n, _ := s.Sum("pollreload_scans_total", nil); n < 1 {
			return fmt.Errorf("pollreload_scans_total = %v; want >= 1", n)
		}
		return nil
	})
}

// checkExit stops the daemon and fails the test unless it shut down cleanly.
func (p *Pollreload) checkExit(t testing.TB) {
	t.Helper()
	wasRunning := !p.Exited()
	err := p.Stop()
	if strings.Contains(p.Output(), "WARNING: DATA RACE") {
		t.Errorf("pollreload reported a data race")
	}
	if wasRunning && err != nil {
		t.Errorf("pollreload after SIGTERM: %v; want exit status 0", err)
	}
}

// Metric returns the daemon's metric name summed over the series whose
// labels include labels (see Samples.Sum).
func (p *Pollreload) Metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	if p.MetricsAddr == "" {
		t.Fatal("pollreload was started with metrics disabled")
	}
	return Metric(t, p.MetricsAddr, name, labels)
}

// Result is the outcome of a pollreload command that ran to its end.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

// Run runs the pollreload binary once with args and env (for `check`,
// `hash`, `--version`, or a daemon expected to refuse its configuration)
// and returns its output and exit code. It fails the test if the command
// cannot start or is still running after timeout.
func Run(t testing.TB, timeout time.Duration, env map[string]string, args ...string) Result {
	t.Helper()
	bin := BuildPollreload(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = envList(baseEnv(), env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: cmd.ProcessState.ExitCode()}
	if ctx.Err() != nil {
		t.Fatalf("pollreload %s: still running after %v\nstderr:\n%s", strings.Join(args, " "), timeout, res.Stderr)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("pollreload %s: %v", strings.Join(args, " "), err)
	}
	return res
}

func copyEnv(env map[string]string) map[string]string {
	out := make(map[string]string, len(env)+1)
	for k, v := range env {
		out[k] = v
	}
	return out
}
