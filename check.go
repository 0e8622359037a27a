package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pollreload/pollreload/config"
	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file is all of `pollreload check`: the watched paths, the targets
// the daemon built and how each verifies its reloads, the check command,
// and the problems found with their fixes. Nothing is signalled and no
// reload request is sent.

// runCheck scans once and reports what a reload would do, ending with the
// fix for every problem found. It returns an error when the setup cannot
// work.
func runCheck(ctx context.Context, cfg config.Config, comp components, stdout io.Writer) error {
	var problems []string
	h := comp.hasher
	fmt.Fprintln(stdout, "Watched paths:")
	for _, p := range cfg.ConfigDir {
		s, err := h.Scan(ctx, p)
		if err != nil {
			// The line names p already: the root the error names is not
			// repeated.
			cause := cfg.Explain(err)
			if re := (*hasher.RootError)(nil); errors.As(err, &re) {
				cause = cfg.Explain(re.Err)
			}
			fmt.Fprintf(stdout, "  %s: cannot scan: %s\n", p, cause)
			if hasher.ErrorKind(err) == "limit" { // the fix says how to raise it
				problems = append(problems, fmt.Sprintf("%s cannot be scanned: %s", p, cause))
			} else {
				problems = append(problems, fmt.Sprintf("%s cannot be scanned (%s): fix the path or its permissions", p, cause))
			}
			continue
		}
		fmt.Fprintf(stdout, "  %s: %s, %s, %s\n", p, s.Kind, count(len(s.Files), "file"), count(int(s.Bytes), "byte"))
		for _, sk := range s.Skipped {
			fmt.Fprintf(stdout, "    skipped (%s): %s\n", sk.Reason, displayName(sk.Path))
		}
		for _, e := range s.Errors {
			fmt.Fprintf(stdout, "    unreadable (%s): %s: %v\n", e.Kind, displayName(e.Path), cfg.Explain(e.Err))
			problems = append(problems, fmt.Sprintf("%s/%s is unreadable by uid %d: changes to it are not seen", p, e.Path, os.Getuid()))
		}
	}

	problems = append(problems, checkTargets(ctx, cfg, comp, stdout)...)
	if len(problems) > 0 {
		fmt.Fprintln(stdout, "Problems:")
		for _, p := range problems {
			fmt.Fprintln(stdout, "  -", p)
		}
		return &exitError{code: 1, err: fmt.Errorf("check found %s", count(len(problems), "problem"))}
	}
	fmt.Fprintln(stdout, "OK: a change would be delivered.")
	return nil
}

func checkProcesses(cfg config.Config, comp components, stdout io.Writer) []string {
	p := comp.process
	if p == nil {
		return []string{fmt.Sprintf("no process to check: set %s or %s", cfg.Name("PROCESS_NAME"), cfg.Name("PID_FILE"))}
	}
	sig := cfg.ReloadSignal.Signal()
	cands, err := p.Inspect()
	if err != nil {
		fmt.Fprintf(stdout, "  none: %s\n", cfg.Explain(err))
		return []string{cfg.Explain(err)}
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	// ARGV0 and EXE come after the short columns: argv[0] may hold spaces
	// (nginx: master process ...), and scripts read PID..SELECTED by field.
	fmt.Fprintln(tw, "  PID\tNAME\tUID\tSELECTED\tCATCHES "+unix.SignalName(sig)+"\tARGV0\tEXE\tSIGNAL ALLOWED")
	var problems []string
	selected := 0
	for _, c := range cands {
		allowed := "yes"
		killErr := cfg.Explain(c.KillErr)
		if killErr != "" {
			allowed = "no: " + killErr
		}
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.PID, displayName(c.Name), c.UID, yesNo(c.Selected), yesNo(c.Catches), column(c.Argv0), column(c.Exe), allowed)
		if !c.Selected {
			continue
		}
		selected++
		if killErr != "" {
			problems = append(problems, killErr)
		}
		if !c.Catches && !cfg.ReloadForce {
			problems = append(problems, fmt.Sprintf("PID %d (%s) does not catch %s, whose default action would end it: reloads wait until it installs a handler (set %s=true only if you are sure)", c.PID, c.Name, unix.SignalName(sig), cfg.Name("RELOAD_FORCE")))
		}
	}
	tw.Flush()
	if selected == 0 {
		problems = append(problems, fmt.Sprintf("%v: check %s/%s, and set shareProcessNamespace: true on the pod so the sidecar can see the application", signaler.ErrNoTarget, cfg.Name("PROCESS_NAME"), cfg.Name("PID_FILE")))
	}
	return problems
}

func checkURL(ctx context.Context, cfg config.Config, raw string, stdout io.Writer) []string {
	fmt.Fprintf(stdout, "  %s %s\n", cfg.ReloadMethod, signaler.RedactURL(raw))
	ctx, cancel := context.WithTimeout(ctx, checkNetTimeout(cfg))
	defer cancel()
	// The daemon's TLS settings: a certificate every reload would fail on
	// fails here too. No request is sent, so nothing is reloaded.
	what, err := cfg.ClientOptions().Handshake(ctx, raw)
	if err != nil {
		err = signaler.ScrubURL(raw, err)
		fmt.Fprintf(stdout, "  not reachable: %v\n", err)
		return []string{fmt.Sprintf("%s %s cannot be reached as the daemon would (%v); is the application listening, and does its certificate verify (%s)?", cfg.Name("RELOAD_URL"), signaler.TargetLabel(raw), err, cfg.Name("RELOAD_CA_FILE"))}
	}
	fmt.Fprintf(stdout, "  reachable (%s)\n", what)
	return nil
}

// checkNetTimeout bounds each network look of check: RELOAD_TIMEOUT, at
// most 10s, as a runbook's check must answer in seconds even when an
// endpoint accepts connections and never answers.
func checkNetTimeout(cfg config.Config) time.Duration { return min(cfg.ReloadTimeout, 10*time.Second) }

// checkTargets is the target part of `pollreload check`: the targets the
// daemon built (newTargets), each with how its reloads are verified as its
// verifiers describe themselves, and for RELOAD_VERIFY_URL, what the URL
// answered. Nothing is signalled and no reload request is sent.
func checkTargets(ctx context.Context, cfg config.Config, comp components, stdout io.Writer) []string {
	var problems []string
	for _, t := range comp.targets {
		switch r := t.reloader.(type) {
		case *signaler.Process:
			label := signaler.TargetLabel(strings.Join(cfg.ProcessName, ","))
			if cfg.PIDFile != "" {
				label = cfg.Name("PID_FILE") + " " + cfg.PIDFile
			}
			fmt.Fprintf(stdout, "Reload target: process %s\n", label)
			problems = append(problems, checkProcesses(cfg, comp, stdout)...)
			if comp.app != nil {
				lines, problem := comp.app.describe(cfg)
				for _, l := range lines {
					fmt.Fprintf(stdout, "  %s\n", l)
				}
				if problem != "" {
					problems = append(problems, problem)
				}
			}
		case *signaler.HTTP:
			fmt.Fprintf(stdout, "Reload target: URL %s\n", signaler.TargetLabel(t.raw))
			problems = append(problems, checkURL(ctx, cfg, t.raw, stdout)...)
			fmt.Fprintf(stdout, "  auth: %s\n", cfg.ClientOptions().Describe())
			fmt.Fprintf(stdout, "  verify: %s\n", r.Describe())
		}
		for _, v := range verify.List(t.verifier) {
			switch v := v.(type) {
			case *verify.ChildrenVerifier:
				problems = append(problems, checkChildren(cfg, comp, v, stdout)...)
			case *verify.MetricVerifier:
				problems = append(problems, checkVerifyURL(ctx, cfg, v, stdout)...)
			case *verify.LogVerifier:
				problems = append(problems, checkVerifyLog(cfg, v, stdout)...)
			case *verify.CommandVerifier:
				problems = append(problems, checkVerifyCommand(ctx, cfg, v, stdout)...)
			case *verify.ExecVerifier:
				fmt.Fprintf(stdout, "  verify: %s=%s: %s\n", cfg.Name("RELOAD_VERIFY"), config.VerifyExec, v.Describe())
			case verify.Describer:
				fmt.Fprintf(stdout, "  verify: %s\n", v.Describe())
			}
		}
	}
	problems = append(problems, checkCommand(ctx, cfg, comp.check, stdout)...)
	return problems
}

// checkVerifyURL scrapes RELOAD_VERIFY_URL once and shows the metric found.
func checkVerifyURL(ctx context.Context, cfg config.Config, mv *verify.MetricVerifier, stdout io.Writer) []string {
	fmt.Fprintf(stdout, "  verify: %s %s\n", cfg.Name("RELOAD_VERIFY_URL"), mv.URL())
	ctx, cancel := context.WithTimeout(ctx, checkNetTimeout(cfg))
	defer cancel()
	p, err := mv.Probe(ctx)
	switch {
	case errors.Is(err, verify.ErrNoVerifyMetric):
		fmt.Fprintf(stdout, "    answered, but: %s\n", cfg.Explain(err))
		return []string{cfg.Explain(err)}
	case err != nil:
		fmt.Fprintf(stdout, "    no answer: %v\n", err)
		return []string{fmt.Sprintf("%s does not answer (%v): reloads would stay unverified and be retried; is the application up, and is the URL its metrics endpoint?", cfg.Name("RELOAD_VERIFY_URL"), err)}
	}
	last := "never"
	if !p.LastSuccess.IsZero() {
		last = p.LastSuccess.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "    answered; verifies by %s (last success %s)\n", p.Timestamp, last)
	if p.Successful != "" {
		fmt.Fprintf(stdout, "    and %s = %d\n", p.Successful, map[bool]int{true: 1, false: 0}[p.OK])
	} else {
		fmt.Fprintf(stdout, "    (no *_last_reload_successful gauge: a refusal shows only as no success within %s)\n", cfg.Name("RELOAD_TIMEOUT"))
	}
	return nil
}

// checkChildren lists the workers RELOAD_VERIFY=children would watch.
func checkChildren(cfg config.Config, comp components, cv *verify.ChildrenVerifier, stdout io.Writer) []string {
	if comp.process == nil {
		return nil
	}
	cands, err := comp.process.Inspect()
	if err != nil {
		return nil // reported above
	}
	var problems []string
	for _, c := range cands {
		if !c.Selected {
			continue
		}
		kids, err := cv.Children(c.PID)
		if err != nil {
			return []string{err.Error()}
		}
		fmt.Fprintf(stdout, "  verify: %s=%s: pid %d has children %v, to be replaced within %s\n", cfg.Name("RELOAD_VERIFY"), config.VerifyChildren, c.PID, kids, cv.Timeout())
		if len(kids) == 0 {
			problems = append(problems, fmt.Sprintf("%s=%s: pid %d (%s) has no children, so no reload of it can be verified; use it for master/worker servers only", cfg.Name("RELOAD_VERIFY"), config.VerifyChildren, c.PID, c.Name))
		}
	}
	return problems
}

// checkCommand runs the check before the delivery once, on the content as
// it is now, and shows its exit code and output.
func checkCommand(ctx context.Context, cfg config.Config, c *verify.Command, stdout io.Writer) []string {
	if c == nil {
		return nil
	}
	how := "run directly, split into words: " + quoteWords(c.Argv())
	if c.Shell() {
		how = "run with /bin/sh -c"
	}
	fmt.Fprintf(stdout, "Check before the delivery: %s (%s; timeout %s)\n", c, how, c.Timeout())
	r := c.Run(ctx)
	switch {
	case r.Err != nil:
		fmt.Fprintf(stdout, "  no verdict: %s\n", cfg.Explain(r.Err))
	default:
		fmt.Fprintf(stdout, "  exit code %d after %s\n", r.ExitCode, r.Took.Round(time.Millisecond))
	}
	for _, line := range r.FirstLines() {
		fmt.Fprintf(stdout, "  | %s\n", line)
	}
	switch err := c.Verdict(r); {
	case err == nil:
		fmt.Fprintln(stdout, "  passes on the current content: a change that passes too is delivered")
		return nil
	case r.Err != nil:
		return []string{fmt.Sprintf("the check before the delivery gives no verdict (%s): every change would wait for it, and nothing would be delivered", cfg.Explain(r.Err))}
	default:
		return []string{fmt.Sprintf("the check before the delivery fails on the current content (exit code %d): a change is delivered only once it passes", r.ExitCode)}
	}
}

// quoteWords shows argv one word per quoted string, so the splitting can be
// seen; URLs in it are masked.
func quoteWords(argv []string) string {
	out := make([]string, len(argv))
	for i, w := range argv {
		out[i] = strconv.Quote(signaler.Excerpt([]byte(w), nil))
	}
	return "[" + strings.Join(out, " ") + "]"
}
