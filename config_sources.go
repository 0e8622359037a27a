package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file holds the verification sources a user names: a command
// (RELOAD_VERIFY_COMMAND), a log file (RELOAD_VERIFY_LOG*) and the process
// evidence of a server that re-executes itself (RELOAD_VERIFY=exec).

// verifyExec is RELOAD_VERIFY's value for servers that re-execute
// themselves in place.
const verifyExec = "exec"

// validateSources checks RELOAD_VERIFY_COMMAND, RELOAD_VERIFY_SHELL and
// RELOAD_VERIFY_LOG*.
func (c Config) validateSources() error {
	if c.ReloadVerifyCommand == "" {
		if _, given := c.given["RELOAD_VERIFY_COMMAND"]; given {
			return c.configErr("RELOAD_VERIFY_COMMAND", "", "want a command that exits 0 when the application took its configuration and 1 when it refused it, or unset it")
		}
		if c.ReloadVerifyShell {
			return fmt.Errorf("%s is set but %s is not: set the command to run, or unset it", c.name("RELOAD_VERIFY_SHELL"), c.name("RELOAD_VERIFY_COMMAND"))
		}
	} else if _, err := c.verifyCommand(nil); err != nil {
		return c.configErr("RELOAD_VERIFY_COMMAND", signaler.Excerpt([]byte(c.ReloadVerifyCommand), nil), c.commandProblem(err, "RELOAD_VERIFY_SHELL"))
	}
	if c.VerifyLog == "" {
		for _, v := range []string{"RELOAD_VERIFY_LOG_SUCCESS", "RELOAD_VERIFY_LOG_FAILURE"} {
			if _, given := c.given[v]; given {
				return fmt.Errorf("%s is set but %s is not: name the application's log file, or unset it", c.name(v), c.name("RELOAD_VERIFY_LOG"))
			}
		}
		return nil
	}
	for _, p := range []struct{ v, re string }{{"RELOAD_VERIFY_LOG_SUCCESS", c.VerifyLogSuccess}, {"RELOAD_VERIFY_LOG_FAILURE", c.VerifyLogFailure}} {
		if p.re == "" {
			return c.configErr(p.v, "", "want a regular expression (Go syntax) of the log line, such as 'config file loading failed'; RELOAD_VERIFY_LOG needs both patterns")
		}
		if _, err := regexp.Compile(p.re); err != nil {
			return c.configErr(p.v, p.re, fmt.Sprintf("want a regular expression in Go syntax (%v)", err))
		}
	}
	return nil
}

// verifyCommand returns RELOAD_VERIFY_COMMAND's Command, nil when it is
// not set. Each run may take up to RELOAD_TIMEOUT.
func (c Config) verifyCommand(env []string) (*verify.Command, error) {
	if c.ReloadVerifyCommand == "" {
		return nil, nil
	}
	return verify.NewCommand(verify.CommandOptions{
		Line: c.ReloadVerifyCommand, Shell: c.ReloadVerifyShell, Timeout: c.ReloadTimeout,
		Env: env, Name: c.name("RELOAD_VERIFY_COMMAND"),
	})
}

// sourceVerifiers returns the verifiers of a process target that the
// sources above ask for, in the order they run after the delivery: the
// re-exec, the log, the command (which gets pollreload's environment
// without pollreload's own variables). The settings were checked by
// Validate.
func sourceVerifiers(cfg Config) []verify.Verifier {
	sig := cfg.ReloadSignal.Signal()
	var vs []verify.Verifier
	if strings.EqualFold(strings.TrimSpace(cfg.ReloadVerify), verifyExec) {
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
	if cmd, err := cfg.verifyCommand(checkEnv(cfg.environ)); err == nil && cmd != nil {
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
func refuseChildrenUnfit(cfg Config, comp components) error {
	if !strings.EqualFold(strings.TrimSpace(cfg.ReloadVerify), verifyChildren) || comp.process == nil {
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
			return &exitError{code: 2, err: fmt.Errorf("%s=%s: %w", cfg.name("RELOAD_VERIFY"), cfg.ReloadVerify, err)} // run adds the fix
		}
	}
	return nil
}

// checkVerifyLog is the part of `pollreload check` for RELOAD_VERIFY_LOG:
// what is read, and whether the file can be read now.
func checkVerifyLog(cfg Config, l *verify.LogVerifier, stdout io.Writer) []string {
	fmt.Fprintf(stdout, "  verify: %s %s\n", cfg.name("RELOAD_VERIFY_LOG"), l.Describe())
	fi, err := os.Stat(l.Path())
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "    cannot read it now: %v\n", err)
		return []string{fmt.Sprintf("%s %s cannot be read (%v): name the file the application writes its log to, and make it readable by uid %d", cfg.name("RELOAD_VERIFY_LOG"), l.Path(), err, os.Getuid())}
	case !fi.Mode().IsRegular():
		return []string{fmt.Sprintf("%s %s is not a regular file: name the file the application writes its log to", cfg.name("RELOAD_VERIFY_LOG"), l.Path())}
	}
	fmt.Fprintf(stdout, "    readable, %d bytes now\n", fi.Size())
	return nil
}

// checkVerifyCommand is the part of `pollreload check` for
// RELOAD_VERIFY_COMMAND: how it runs, and what it says now.
func checkVerifyCommand(ctx context.Context, cfg Config, cv *verify.CommandVerifier, stdout io.Writer) []string {
	cmd := cv.Command()
	words := make([]string, len(cmd.Argv()))
	for i, w := range cmd.Argv() {
		words[i] = signaler.Excerpt([]byte(w), nil)
	}
	fmt.Fprintf(stdout, "  verify: %s (words %q)\n", cv.Describe(), words)
	r := cmd.Run(ctx)
	if r.Err != nil {
		fmt.Fprintf(stdout, "    now: no verdict: %s\n", cfg.explain(r.Err))
		return []string{fmt.Sprintf("%s gives no verdict (%s): reloads would stay unverified", cfg.name("RELOAD_VERIFY_COMMAND"), cfg.explain(r.Err))}
	}
	fmt.Fprintf(stdout, "    now: exit status %d: %s\n", r.ExitCode, r.Lines())
	return nil
}
