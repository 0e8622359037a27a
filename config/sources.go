package config

import (
	"fmt"
	"regexp"

	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file validates the verification sources a user names: a command
// (RELOAD_VERIFY_COMMAND), a log file (RELOAD_VERIFY_LOG*) and the process
// evidence of a server that re-executes itself (RELOAD_VERIFY=exec).

// VerifyExec is RELOAD_VERIFY's value for servers that re-execute
// themselves in place.
const VerifyExec = "exec"

// validateSources checks RELOAD_VERIFY_COMMAND, RELOAD_VERIFY_SHELL and
// RELOAD_VERIFY_LOG*.
func (c Config) validateSources() error {
	if c.ReloadVerifyCommand == "" {
		if _, given := c.given["RELOAD_VERIFY_COMMAND"]; given {
			return c.configErr("RELOAD_VERIFY_COMMAND", "", "want a command that exits 0 when the application took its configuration and 1 when it refused it, or unset it")
		}
		if c.ReloadVerifyShell {
			return fmt.Errorf("%s is set but %s is not: set the command to run, or unset it", c.Name("RELOAD_VERIFY_SHELL"), c.Name("RELOAD_VERIFY_COMMAND"))
		}
	} else if _, err := c.VerifyCommand(nil); err != nil {
		return c.configErr("RELOAD_VERIFY_COMMAND", signaler.Excerpt([]byte(c.ReloadVerifyCommand), nil), c.commandProblem(err, "RELOAD_VERIFY_SHELL"))
	}
	if c.VerifyLog == "" {
		for _, v := range []string{"RELOAD_VERIFY_LOG_SUCCESS", "RELOAD_VERIFY_LOG_FAILURE"} {
			if _, given := c.given[v]; given {
				return fmt.Errorf("%s is set but %s is not: name the application's log file, or unset it", c.Name(v), c.Name("RELOAD_VERIFY_LOG"))
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

// VerifyCommand returns RELOAD_VERIFY_COMMAND's Command, nil when it is
// not set. Each run may take up to RELOAD_TIMEOUT. env is the command's
// environment (see CommandEnv).
func (c Config) VerifyCommand(env []string) (*verify.Command, error) {
	if c.ReloadVerifyCommand == "" {
		return nil, nil
	}
	return verify.NewCommand(verify.CommandOptions{
		Line: c.ReloadVerifyCommand, Shell: c.ReloadVerifyShell, Timeout: c.ReloadTimeout,
		Env: env, Name: c.Name("RELOAD_VERIFY_COMMAND"),
	})
}
