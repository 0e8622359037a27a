package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pollreload/pollreload/config"
	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file applies an application profile (RELOAD_APP, or recognised from
// the target's executable) to a process target: its signal, unless
// RELOAD_SIGNAL is given, and its verification, unless RELOAD_VERIFY_URL or
// RELOAD_VERIFY=children is.

// appTarget is the profile chosen for the process target.
type appTarget struct {
	profile  verify.Profile
	detected bool // recognised from the executable, not named by RELOAD_APP
	verifier *verify.AppVerifier
	cmdline  func() ([]string, error)
	// check is the profile's check command, nil when RELOAD_CHECK_COMMAND
	// is set, the profile has none, its binary is not beside pollreload,
	// or the target did not run at start.
	check *verify.Command
}

// chooseProfile returns the profile RELOAD_APP names or, without it, the
// one of the running target's executable or command line (exe, args: a
// script its interpreter runs, such as gunicorn, is recognised by the
// script); nil when neither.
func chooseProfile(cfg config.Config, exe string, args []string) (*verify.Profile, bool) {
	if cfg.App != "" {
		p, _ := verify.LookupProfile(cfg.App) // Validate checked it
		return &p, false
	}
	if exe == "" && len(args) == 0 {
		return nil, false
	}
	p, ok := verify.DetectProfile(exe, args)
	if !ok {
		return nil, false
	}
	return &p, true
}

// newAppTarget builds the profile's verifier for a target whose command
// line cmdline returns, or an exit error when the profile refuses it.
func newAppTarget(cfg config.Config, p *verify.Profile, detected bool, cmdline func() ([]string, error)) (*appTarget, error) {
	if p == nil {
		return nil, nil
	}
	if p.Refused != "" {
		how := cfg.Name("RELOAD_APP") + "=" + cfg.App
		if detected {
			how = "the target's executable"
		}
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: refused (%s): %s", p.Name, how, p.Refused)}
	}
	opts := verify.SourceOptions{Status: cfg.AppStatus, Timeout: cfg.ReloadTimeout, Signal: profileSignal(cfg, p)}
	if cfg.AppDSNFile != "" {
		b, err := os.ReadFile(cfg.AppDSNFile)
		if err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("%s=%s: %w", cfg.Name("RELOAD_APP_DSN_FILE"), cfg.AppDSNFile, withoutPathErr(err))}
		}
		opts.DSN = strings.TrimSpace(string(b))
	}
	a := &appTarget{profile: *p, detected: detected, cmdline: cmdline}
	a.verifier = verify.NewAppVerifier(verify.AppOptions{Profile: *p, Cmdline: cmdline, Source: opts})
	if cfg.ReloadCheckCommand == "" {
		if args, err := cmdline(); err == nil {
			if argv := p.CheckCommand(args, exec.LookPath); argv != nil {
				c, err := verify.NewCommand(verify.CommandOptions{
					Line: shellJoin(argv), Timeout: cfg.ReloadCheckTimeout, Env: cfg.CommandEnv(),
					Name: "the " + p.Name + " profile's check",
				})
				if err == nil {
					a.check = c
				}
			}
		}
	}
	return a, nil
}

// shellJoin quotes each argument for the check command's word splitting.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// profileSignal is RELOAD_SIGNAL when given, else the profile's signal.
func profileSignal(cfg config.Config, p *verify.Profile) syscall.Signal {
	if cfg.Given("RELOAD_SIGNAL") || p == nil || p.Signal == 0 {
		return cfg.ReloadSignal.Signal()
	}
	return p.Signal
}

// ownVerification reports whether the user chose the verification
// (RELOAD_VERIFY_URL or RELOAD_VERIFY=children): it then replaces the
// profile's.
func ownVerification(cfg config.Config) bool {
	return cfg.ReloadVerifyURL != "" || strings.TrimSpace(cfg.ReloadVerify) != "" ||
		cfg.ReloadVerifyCommand != "" || cfg.VerifyLog != ""
}

// processCmdline returns the command line of the process p's policy
// selects first.
func processCmdline(p *signaler.Process) func() ([]string, error) {
	return func() ([]string, error) {
		cands, err := p.Inspect()
		if err != nil {
			return nil, err
		}
		for _, c := range cands {
			if c.Selected {
				return verify.ReadCmdline("", c.PID)
			}
		}
		return nil, errors.New("no process selected")
	}
}

// firstCandidate returns the executable and command line of the first
// selected process, for recognising the application; empty when none
// runs.
func firstCandidate(p *signaler.Process) (exe string, args []string) {
	cands, err := p.Inspect()
	if err != nil {
		return "", nil
	}
	for _, c := range cands {
		if c.Selected {
			args, err := verify.ReadCmdline("", c.PID)
			if err != nil && c.Argv0 != "" {
				args = []string{c.Argv0}
			}
			return c.Exe, args
		}
	}
	return "", nil
}

// describe logs (or, for check, returns) what the profile does for the
// target running now.
func (a *appTarget) describe(cfg config.Config) (lines []string, problem string) {
	how := cfg.Name("RELOAD_APP") + "=" + cfg.App
	if a.detected {
		how = "recognised from the target's executable"
	}
	sig := profileSignal(cfg, &a.profile)
	lines = append(lines, fmt.Sprintf("profile %s (%s): signal %s", a.profile.Name, how, signaler.SignalName(sig)))
	switch {
	case cfg.ReloadCheckCommand != "":
		lines = append(lines, "check: "+cfg.Name("RELOAD_CHECK_COMMAND")+" replaces the profile's")
	case a.check != nil:
		lines = append(lines, "check: "+a.check.String())
	}
	if ownVerification(cfg) {
		lines = append(lines, "verification: the user's "+cfg.Name("RELOAD_VERIFY_URL")+" / "+cfg.Name("RELOAD_VERIFY")+" replace the profile's ("+a.profile.Evidence+")")
		return lines, ""
	}
	args, err := a.cmdline()
	if err != nil {
		lines = append(lines, fmt.Sprintf("verification: %s, found from the target's command line once it runs (%v)", a.profile.Evidence, err))
		return lines, ""
	}
	source, what, err := a.verifier.Describe(args)
	if err != nil {
		why := err.Error()
		var ne *verify.NoEvidenceError
		if errors.As(err, &ne) {
			why = ne.Why
		}
		msg := fmt.Sprintf("%s reloads will be counted unverified, not success: %s", a.profile.Name, why)
		if fix := cfg.Fix(err); fix != "" {
			msg += "; " + fix
		}
		lines = append(lines, "verification: "+msg)
		return lines, msg
	}
	switch source.(type) {
	case *verify.ChildrenVerifier:
		what += fmt.Sprintf(" (as %s=%s)", cfg.Name("RELOAD_VERIFY"), config.VerifyChildren)
	case *verify.ExecVerifier:
		what += fmt.Sprintf(" (as %s=%s)", cfg.Name("RELOAD_VERIFY"), config.VerifyExec)
	}
	lines = append(lines, "verification: "+what)
	return lines, ""
}

// logProfile says at start which profile applies and how it verifies.
func logProfile(cfg config.Config, a *appTarget, logger *slog.Logger) {
	if a == nil {
		return
	}
	lines, problem := a.describe(cfg)
	if problem != "" {
		logger.Warn("application profile: "+strings.Join(lines, "; "), "app", a.profile.Name)
		return
	}
	logger.Info("application profile: "+strings.Join(lines, "; "), "app", a.profile.Name)
}

func withoutPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// wrapperCmdline is the wrapped child's command line: known before it
// starts, so the binary is resolved the way exec will.
func wrapperCmdline(argv []string) func() ([]string, error) {
	return func() ([]string, error) {
		out := append([]string(nil), argv...)
		if !filepath.IsAbs(out[0]) {
			if p, err := exec.LookPath(out[0]); err == nil {
				out[0] = p
			}
		}
		return out, nil
	}
}
