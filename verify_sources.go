package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/pollreload/pollreload/config"
	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file builds the verifiers of the sources a user names (a command,
// a log file, the re-exec of RELOAD_VERIFY=exec), refuses
// RELOAD_VERIFY=children where it cannot work, and shows the sources in
// check. config/sources.go validates their settings.

// sourceVerifiers returns the verifiers of a process target that the
// sources above ask for, in the order they run after the delivery: the
// re-exec, the log, the command (which gets pollreload's environment
// without pollreload's own variables). The settings were checked by
// Validate.
func sourceVerifiers(cfg config.Config) []verify.Verifier {
	sig := cfg.ReloadSignal.Signal()
	var vs []verify.Verifier
	if strings.EqualFold(strings.TrimSpace(cfg.ReloadVerify), config.VerifyExec) {
		vs = append(vs, verify.NewExecVerifier(verify.ExecOptions{Timeout: cfg.ReloadTimeout, Signal: sig}))
	}
	if cfg.VerifyLog != "" {
		l, err := verify.NewLogVerifier(verify.LogOptions{
			Path: cfg.VerifyLog, Timeout: cfg.ReloadTimeout,
			Success: regexp.MustCompile(cfg.VerifyLogSuccess), Failure: regexp.MustCompile(cfg.VerifyLogFailure),
		})
		if err != nil {
			panic("pollreload: RELOAD_VERIFY_LOG checked once, refused now: " + err.Error())
		}
		vs = append(vs, l)
	}
	if cmd, err := cfg.VerifyCommand(cfg.CommandEnv()); err == nil && cmd != nil {
		cv, err := verify.NewCommandVerifier(verify.CommandVerifierOptions{Command: cmd, Timeout: cfg.ReloadTimeout})
		if err != nil {
			panic("pollreload: RELOAD_VERIFY_COMMAND checked once, refused now: " + err.Error())
		}
		vs = append(vs, cv)
	}
	return vs
}

// refuseChildrenUnfit returns an exit-2 error when RELOAD_VERIFY=children
// cannot work for a target found now: it has no children, or its children
// are not workers (sshd's sessions, postgres's backends). Judged by them,
// every reload would wait for workers that never come. A target that
// appears later gets the same error from the verifier.
func refuseChildrenUnfit(cfg config.Config, comp components) error {
	if !strings.EqualFold(strings.TrimSpace(cfg.ReloadVerify), config.VerifyChildren) || comp.process == nil {
		return nil
	}
	cands, err := comp.process.Inspect()
	if err != nil {
		return nil
	}
	for _, c := range cands {
		if !c.Selected {
			continue
		}
		if err := verify.ChildrenUnfit("", c.PID, c.Name, cfg.ReloadSignal.Signal()); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("%s=%s: %w", cfg.Name("RELOAD_VERIFY"), cfg.ReloadVerify, err)} // run adds the fix
		}
	}
	return nil
}

// checkVerifyLog is the part of `pollreload check` for RELOAD_VERIFY_LOG:
// what is read, and whether the file can be read now.
func checkVerifyLog(cfg config.Config, l *verify.LogVerifier, stdout io.Writer) []string {
	fmt.Fprintf(stdout, "  verify: %s %s\n", cfg.Name("RELOAD_VERIFY_LOG"), l.Describe())
	fi, err := os.Stat(l.Path())
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "    cannot read it now: %v\n", err)
		return []string{fmt.Sprintf("%s %s cannot be read (%v): name the file the application writes its log to, and make it readable by uid %d", cfg.Name("RELOAD_VERIFY_LOG"), l.Path(), err, os.Getuid())}
	case !fi.Mode().IsRegular():
		return []string{fmt.Sprintf("%s %s is not a regular file: name the file the application writes its log to", cfg.Name("RELOAD_VERIFY_LOG"), l.Path())}
	}
	fmt.Fprintf(stdout, "    readable, %d bytes now\n", fi.Size())
	return nil
}

// checkVerifyCommand is the part of `pollreload check` for
// RELOAD_VERIFY_COMMAND: how it runs, and what it says now.
func checkVerifyCommand(ctx context.Context, cfg config.Config, cv *verify.CommandVerifier, stdout io.Writer) []string {
	cmd := cv.Command()
	words := make([]string, len(cmd.Argv()))
	for i, w := range cmd.Argv() {
		words[i] = signaler.Excerpt([]byte(w), nil)
	}
	fmt.Fprintf(stdout, "  verify: %s (words %q)\n", cv.Describe(), words)
	r := cmd.Run(ctx)
	if r.Err != nil {
		fmt.Fprintf(stdout, "    now: no verdict: %s\n", cfg.Explain(r.Err))
		return []string{fmt.Sprintf("%s gives no verdict (%s): reloads would stay unverified", cfg.Name("RELOAD_VERIFY_COMMAND"), cfg.Explain(r.Err))}
	}
	fmt.Fprintf(stdout, "    now: exit status %d: %s\n", r.ExitCode, r.Lines())
	return nil
}
