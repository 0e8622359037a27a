package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// These tests are issue 17's second run of nginx, sshd, gunicorn and
// pgbouncer (sources_test.go runs them with docs/verification.md's
// settings): pollreload is given nothing but the watched directory and the
// target's PID file, as a user who names only the target. The application
// profile, recognised from the target, must then never count a refused
// configuration success: nginx -t, sshd -t and gunicorn --check-config,
// found from the target's command line, reject it before any signal, and
// the application keeps answering with the old configuration; pgbouncer's
// verdict is in a log the profile cannot see, so each reload is
// unverified, and check and the start log name RELOAD_VERIFY_LOG.
//
// Like sources_test.go's they are not parallel: another test's pollreload
// finding nginx or pgbouncer by name would signal these too.

// targetOnlyEnv is a user's whole configuration when only the target is
// named, with the pace a test needs (a short poll and settle, and a
// verification timeout for a loaded machine); no check or verification
// setting.
func targetOnlyEnv(dir, pidFile string) map[string]string {
	return map[string]string{
		"CONFIG_DIR":     dir,
		"PID_FILE":       pidFile,
		"POLL_INTERVAL":  "100ms",
		"SETTLE_TIME":    "200ms",
		"RELOAD_TIMEOUT": "10s",
	}
}

// startTargetOnly runs `pollreload check` and the daemon with
// targetOnlyEnv. check must show profile; the start log must have a line
// on the application profile naming it, and every one of words. It returns
// the daemon and check's output.
func startTargetOnly(t *testing.T, dir, pidFile, profile string, words ...string) (*testenv.Pollreload, testenv.Result) {
	t.Helper()
	env := targetOnlyEnv(dir, pidFile)
	checkEnv := targetOnlyEnv(dir, pidFile)
	checkEnv["METRICS_ADDR"] = ""
	res := testenv.Run(t, 60*time.Second, checkEnv, "check")
	if !strings.Contains(res.Stdout, "profile "+profile+" (recognised from the target's executable)") {
		t.Errorf("check does not show the %s profile: exit %d\n%s\n%s", profile, res.ExitCode, res.Stdout, res.Stderr)
	}
	pr := testenv.Start(t, env)
	lines := logLines(pr, append([]string{"application profile", "profile " + profile}, words...)...)
	if len(lines) != 1 {
		t.Errorf("start log lines on the %s profile with %q: %q; want one\n%s", profile, words, lines, pr.Output())
	}
	for _, l := range lines {
		t.Logf("start log: %s", l)
	}
	return pr, res
}

func TestDefaultsNginx(t *testing.T) {
	n := startCheckedNginx(t)
	st := steps{signals: func() int { return nginxSighups(t, n.errorLog) }}
	var res testenv.Result
	st.pr, res = startTargetOnly(t, n.dir, filepath.Join(n.work, "nginx.pid"), "nginx", "check: '"+n.bin+"' '-t'", "workers replaced")
	if res.ExitCode != 0 {
		t.Errorf("check: exit %d; want 0\n%s\n%s", res.ExitCode, res.Stdout, res.Stderr)
	}

	st.validInvalidFix(t, app{
		name:   "nginx",
		write:  func(v, extra string) { n.write(t, v, extra) },
		serves: func(v string) { waitBody(t, n.url, v+"\n") },
		exited: func() (bool, error) { return n.master.Exited(), n.master.Wait(0) },
		bad:    "no_such_directive on;",
		why:    []string{"nginx profile's check", "no_such_directive"},
	}, true)
}

func TestDefaultsSSHD(t *testing.T) {
	s := testenv.StartSSHD(t, "v1")
	pid := s.Proc.PID()
	st := steps{signals: func() int { return strings.Count(s.Proc.Output(), "Received SIGHUP; restarting.") }}
	var res testenv.Result
	st.pr, res = startTargetOnly(t, s.Dir, s.PIDFile, "sshd", "check: '"+s.Bin+"' '-t' '-f' '"+s.Config+"'", "RELOAD_VERIFY=exec")
	if res.ExitCode != 0 {
		t.Errorf("check: exit %d; want 0\n%s\n%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	st.validInvalidFix(t, sshdApp(t, s, "sshd profile's check", "NoSuchOption"), true)
	if s.Proc.Exited() || s.Proc.PID() != pid {
		t.Errorf("sshd pid %d exited: %v; it re-executes in place", pid, s.Proc.Wait(0))
	}
}

func TestDefaultsGunicorn(t *testing.T) {
	g := testenv.StartGunicorn(t, "v1")
	st := steps{signals: func() int { return strings.Count(g.Proc.Output(), "Handling signal: hup") }}
	var res testenv.Result
	st.pr, res = startTargetOnly(t, g.Dir, g.PIDFile, "gunicorn", "check: '"+g.Bin+"' '--check-config'", "workers replaced")
	if res.ExitCode != 0 {
		t.Errorf("check: exit %d; want 0\n%s\n%s", res.ExitCode, res.Stdout, res.Stderr)
	}

	st.validInvalidFix(t, gunicornApp(t, g, "gunicorn profile's check"), true)
}

// TestDefaultsPgbouncer: pgbouncer has no check command, and its verdict
// is only in its log, which the profile cannot find (the test sends its
// stderr to a file, as a pod's runtime would to its own): every reload is
// unverified, never success, and check and the start log name
// RELOAD_VERIFY_LOG, the setting that would verify it.
func TestDefaultsPgbouncer(t *testing.T) {
	p := testenv.StartPgbouncer(t, "50")
	st := steps{}
	var res testenv.Result
	st.pr, res = startTargetOnly(t, p.Dir, p.PIDFile, "pgbouncer", "unverified", "RELOAD_VERIFY_LOG")
	if res.ExitCode == 0 || !strings.Contains(res.Stdout, "RELOAD_VERIFY_LOG") {
		t.Errorf("check: exit %d; want a problem naming RELOAD_VERIFY_LOG\n%s\n%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	t.Logf("check: exit %d:\n%s", res.ExitCode, res.Stdout)
	gauge := st.pr.Metric(t, "pollreload_last_reload_successful", nil)

	p.Write(t, "123", "")
	waitMetric(t, st.pr, "pollreload_reloads_total", map[string]string{"result": "unverified"}, 1)
	st.counted(t, "unverified", 1)
	p.WaitSetting(t, "max_client_conn", "123")
	t.Logf("valid: %s; unverified=%v; SHOW CONFIG max_client_conn = 123", reloadState(t, st.pr), reloadsBy(t, st.pr, "unverified"))

	p.Write(t, "notanumber", "")
	waitMetric(t, st.pr, "pollreload_reloads_total", map[string]string{"result": "unverified"}, 2)
	st.counted(t, "unverified", 2)
	if p.Proc.Exited() {
		t.Fatalf("pgbouncer exited: %v", p.Proc.Wait(0))
	}
	got, err := p.Setting(t.Context(), "max_client_conn")
	if err != nil {
		t.Fatalf("pgbouncer's console does not answer after the refused config: %v", err)
	}
	why := logLines(st.pr, "unverified", "RELOAD_VERIFY_LOG")
	if len(why) < 2 {
		t.Fatalf("log lines on the unverified reloads naming RELOAD_VERIFY_LOG: %q; want one per reload", why)
	}
	t.Logf("invalid: %s; unverified=%v; pgbouncer alive, SHOW CONFIG max_client_conn = %s; log: %s",
		reloadState(t, st.pr), reloadsBy(t, st.pr, "unverified"), got, why[len(why)-1])

	p.Write(t, "150", "")
	waitMetric(t, st.pr, "pollreload_reloads_total", map[string]string{"result": "unverified"}, 3)
	st.counted(t, "unverified", 3)
	p.WaitSetting(t, "max_client_conn", "150")
	if got := reloadsBy(t, st.pr, "success"); got != 0 {
		t.Errorf("success = %v; want 0: no reload of pgbouncer can be verified without RELOAD_VERIFY_LOG", got)
	}
	if g := st.pr.Metric(t, "pollreload_last_reload_successful", nil); g != gauge {
		t.Errorf("pollreload_last_reload_successful = %v; want %v, as before: an unverified reload leaves it alone", g, gauge)
	}
	t.Logf("fix: %s; unverified=%v; SHOW CONFIG max_client_conn = 150", reloadState(t, st.pr), reloadsBy(t, st.pr, "unverified"))
}
