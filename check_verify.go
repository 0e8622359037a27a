package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// checkTargets is the target part of `pollreload check`: each target with
// how its reloads are verified, and for RELOAD_VERIFY_URL, what the URL
// answered. Nothing is signalled and no reload request is sent.
func checkTargets(ctx context.Context, cfg Config, comp components, stdout io.Writer) []string {
	var problems []string
	v := comp.verification
	hasProcess := len(cfg.ProcessName) > 0 || cfg.PIDFile != ""
	urls := cfg.reloadURLs()
	if hasProcess {
		label := signaler.TargetLabel(strings.Join(cfg.ProcessName, ","))
		if cfg.PIDFile != "" {
			label = "PID_FILE " + cfg.PIDFile
		}
		fmt.Fprintf(stdout, "Reload target: process %s\n", label)
		problems = append(problems, checkProcesses(cfg, comp, stdout)...)
		fmt.Fprintf(stdout, "  verify: the signalled process must still run %s after the signal\n", 500*time.Millisecond)
		if strings.EqualFold(strings.TrimSpace(cfg.ReloadVerify), verifyChildren) {
			problems = append(problems, checkChildren(cfg, comp, stdout)...)
		}
		if v.metric != nil {
			problems = append(problems, checkVerifyURL(ctx, v.metric, stdout)...)
		}
	}
	problems = append(problems, checkCommand(ctx, comp.check, stdout)...)
	for i, raw := range urls {
		fmt.Fprintf(stdout, "Reload target: URL %s\n", signaler.TargetLabel(raw))
		problems = append(problems, checkURL(ctx, cfg, raw, stdout)...)
		fmt.Fprintf(stdout, "  auth: %s\n", cfg.clientOptions().Describe())
		fmt.Fprintln(stdout, "  verify: a 2xx answer; 429, 502, 503, 504 and no answer are retried, any other status is a rejection")
		if !hasProcess && i == 0 && v.metric != nil {
			problems = append(problems, checkVerifyURL(ctx, v.metric, stdout)...)
		}
	}
	return problems
}

// checkVerifyURL scrapes RELOAD_VERIFY_URL once and shows the metric found.
func checkVerifyURL(ctx context.Context, mv *verify.MetricVerifier, stdout io.Writer) []string {
	fmt.Fprintf(stdout, "  verify: RELOAD_VERIFY_URL %s\n", mv.URL())
	p, err := mv.Probe(ctx)
	switch {
	case errors.Is(err, verify.ErrNoVerifyMetric):
		fmt.Fprintf(stdout, "    answered, but: %v\n", err)
		return []string{err.Error()}
	case err != nil:
		fmt.Fprintf(stdout, "    no answer: %v\n", err)
		return []string{fmt.Sprintf("RELOAD_VERIFY_URL does not answer (%v): reloads would stay unverified and be retried; is the application up, and is the URL its metrics endpoint?", err)}
	}
	last := "never"
	if !p.LastSuccess.IsZero() {
		last = p.LastSuccess.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "    answered; verifies by %s (last success %s)\n", p.Timestamp, last)
	if p.Successful != "" {
		fmt.Fprintf(stdout, "    and %s = %d\n", p.Successful, map[bool]int{true: 1, false: 0}[p.OK])
	} else {
		fmt.Fprintln(stdout, "    (no *_last_reload_successful gauge: a refusal shows only as no success within RELOAD_TIMEOUT)")
	}
	return nil
}

// checkChildren lists the workers RELOAD_VERIFY=children would watch.
func checkChildren(cfg Config, comp components, stdout io.Writer) []string {
	if comp.process == nil {
		return nil
	}
	cands, err := comp.process.Inspect()
	if err != nil {
		return nil // reported above
	}
	cv := verify.NewChildrenVerifier(verify.ChildrenOptions{Timeout: cfg.ReloadTimeout})
	var problems []string
	for _, c := range cands {
		if !c.Selected {
			continue
		}
		kids, err := cv.Children(c.PID)
		if err != nil {
			return []string{err.Error()}
		}
		fmt.Fprintf(stdout, "  verify: RELOAD_VERIFY=children: pid %d has children %v, to be replaced within %s\n", c.PID, kids, cfg.ReloadTimeout)
		if len(kids) == 0 {
			problems = append(problems, fmt.Sprintf("RELOAD_VERIFY=children: pid %d (%s) has no children, so no reload of it can be verified; use it for master/worker servers only", c.PID, c.Name))
		}
	}
	return problems
}

// checkCommand runs the check before the delivery once, on the content as
// it is now, and shows its exit code and output.
func checkCommand(ctx context.Context, c *verify.Command, stdout io.Writer) []string {
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
		fmt.Fprintf(stdout, "  no verdict: %v\n", r.Err)
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
		return []string{fmt.Sprintf("the check before the delivery gives no verdict (%v): every change would wait for it, and nothing would be delivered", r.Err)}
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
