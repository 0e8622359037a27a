package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// These tests prove issue 17 on sshd, gunicorn, pgbouncer and nginx from
// Debian 12's packages, each started by the test on 127.0.0.1 with its own
// configuration, and pollreload run with the settings
// docs/verification.md gives for it: a valid change is one success and the
// application shows the new value; an invalid one is rejected, the gauge
// reads 0, the application still runs and answers (with the old
// configuration, where the application keeps it), and where a check
// command exists the application never got a signal; the fix is a success
// again and the gauge 1.
//
// They are not parallel: pollreload finds the application by PID file, but
// another test's pollreload finding nginx or pgbouncer by name would
// signal these too.

// steps is what a test does for each of the three changes.
type steps struct {
	pr *testenv.Pollreload
	// signals counts the signals the application logged receiving.
	signals func() int
}

// valid waits for the success count n, the gauge 1, and checks that n
// stays (the reload is counted once) a few scans later.
func (s steps) valid(t *testing.T, n float64) {
	t.Helper()
	waitMetric(t, s.pr, "pollreload_reloads_total", map[string]string{"result": "success"}, n)
	waitMetric(t, s.pr, "pollreload_last_reload_successful", nil, 1)
	waitScans(t, s.pr, 5)
	if got := reloadsBy(t, s.pr, "success"); got != n {
		t.Errorf("success = %v a few scans later; want %v: one reload is counted once", got, n)
	}
}

// invalid waits for the rejection and the gauge 0, and checks the
// rejection stays single. With checked set, the application must not
// have been signalled since signalled was read.
func (s steps) invalid(t *testing.T, checked bool, signalled int) {
	t.Helper()
	waitMetric(t, s.pr, "pollreload_reloads_total", map[string]string{"result": "rejected"}, 1)
	waitMetric(t, s.pr, "pollreload_last_reload_successful", nil, 0)
	s.counted(t, "rejected", 1)
	if checked {
		if got := s.signals(); got != signalled {
			t.Errorf("the application logged %d signals after the check refused the config; want none", got-signalled)
		}
	}
}

// counted checks, ten scans later, that result is still counted n times
// (a reload is counted once, and a refused config is not tried again
// until it changes) and that success is not counted more than it was.
func (s steps) counted(t *testing.T, result string, n float64) {
	t.Helper()
	success := reloadsBy(t, s.pr, "success")
	waitScans(t, s.pr, 10)
	if got := reloadsBy(t, s.pr, result); got != n {
		t.Errorf("%s = %v ten scans later; want %v: one change is counted once", result, got, n)
	}
	if got := reloadsBy(t, s.pr, "success"); got != success {
		t.Errorf("success = %v ten scans later; want still %v", got, success)
	}
}

// app is one application under pollreload, as validInvalidFix drives it.
type app struct {
	name string
	// write rewrites its configuration so that it answers value; extra is
	// one more line (bad, or none).
	write func(value, extra string)
	// serves waits until the application answers value.
	serves func(value string)
	// exited says whether the application has exited, and how.
	exited func() (bool, error)
	// bad is a line its check (or the application) refuses.
	bad string
	// why are words of a log line pollreload must write giving the
	// refusal's reason; none: no such line is required.
	why []string
}

// validInvalidFix makes issue 17's three changes and checks each: v2 is a
// success and served; v3 (with a.bad) is rejected, with checked no signal
// reaches the application, which stays up and answers v2, and a log line
// names why; v4 is the second success and served.
func (s steps) validInvalidFix(t *testing.T, a app, checked bool) {
	t.Helper()
	a.write("v2", "")
	s.valid(t, 1)
	a.serves("v2")
	t.Logf("valid: %s; %s answers v2", reloadState(t, s.pr), a.name)

	signalled := s.signals()
	a.write("v3", a.bad)
	s.invalid(t, checked, signalled)
	if gone, err := a.exited(); gone {
		t.Fatalf("%s exited on the refused config: %v", a.name, err)
	}
	a.serves("v2")
	why := logLines(s.pr, append([]string{"rejected"}, a.why...)...)
	if len(a.why) > 0 && len(why) == 0 {
		t.Errorf("no log line gives the reason (%q):\n%s", a.why, s.pr.Output())
	}
	t.Logf("invalid: %s; %s alive, answers v2, %d signals in all; log: %s", reloadState(t, s.pr), a.name, s.signals(), strings.Join(why, " | "))

	a.write("v4", "")
	s.valid(t, 2)
	a.serves("v4")
	t.Logf("fix: %s; %s answers v4, %d signals in all", reloadState(t, s.pr), a.name, s.signals())
}

// sshdApp is the sshd of testenv.StartSSHD as validInvalidFix drives it:
// the value is the addendum of the version it announces.
func sshdApp(t *testing.T, s *testenv.SSHD, why ...string) app {
	return app{
		name:  "sshd",
		write: func(v, extra string) { s.Write(t, v, extra) },
		serves: func(v string) {
			testenv.WaitFor(t, deliveryTimeout, func() error {
				got, err := s.Version(t.Context())
				if err != nil {
					return fmt.Errorf("sshd does not answer: %w", err)
				}
				if !strings.HasSuffix(got, " "+v) {
					return fmt.Errorf("sshd says %q; want the addendum %s", got, v)
				}
				return nil
			})
		},
		exited: func() (bool, error) { return s.Proc.Exited(), s.Proc.Wait(0) },
		bad:    "NoSuchOption yes",
		why:    why,
	}
}

// gunicornApp is the gunicorn of testenv.StartGunicorn as validInvalidFix
// drives it: the value is the greeting its app answers.
func gunicornApp(t *testing.T, g *testenv.Gunicorn, why ...string) app {
	return app{
		name:   "gunicorn",
		write:  func(v, extra string) { g.Write(t, v, extra) },
		serves: func(v string) { g.WaitServes(t, v) },
		exited: func() (bool, error) { return g.Proc.Exited(), g.Proc.Wait(0) },
		bad:    `workers = "many"`,
		why:    why,
	}
}

func TestSourcesSSHD(t *testing.T) {
	s := testenv.StartSSHD(t, "v1")
	pid := s.Proc.PID()
	st := steps{signals: func() int { return strings.Count(s.Proc.Output(), "Received SIGHUP; restarting.") }}
	st.pr = testenv.Start(t, map[string]string{
		"CONFIG_DIR":           s.Dir,
		"PID_FILE":             s.PIDFile,
		"RELOAD_CHECK_COMMAND": s.CheckCommand(),
		"RELOAD_VERIFY":        "exec",
		"POLL_INTERVAL":        "100ms",
		"SETTLE_TIME":          "200ms",
	})
	st.validInvalidFix(t, sshdApp(t, s, "NoSuchOption"), true)
	if _, _, start, err := procStat(pid); err != nil || s.Proc.Exited() {
		t.Errorf("sshd pid %d gone (%v, start %d); it re-executes in place", pid, err, start)
	}
}

func TestSourcesGunicorn(t *testing.T) {
	g := testenv.StartGunicorn(t, "v1")
	st := steps{signals: func() int { return strings.Count(g.Proc.Output(), "Handling signal: hup") }}
	st.pr = testenv.Start(t, map[string]string{
		"CONFIG_DIR":           g.Dir,
		"PID_FILE":             g.PIDFile,
		"RELOAD_CHECK_COMMAND": g.CheckCommand(),
		"RELOAD_VERIFY":        "children",
		// gunicorn writes __pycache__ beside gunicorn.conf.py whenever it
		// loads it (docs/verification.md says to exclude it).
		"EXCLUDE":        "__pycache__",
		"POLL_INTERVAL":  "100ms",
		"SETTLE_TIME":    "200ms",
		"RELOAD_TIMEOUT": "20s",
	})

	st.validInvalidFix(t, gunicornApp(t, g), true)
}

func TestSourcesPgbouncer(t *testing.T) {
	p := testenv.StartPgbouncer(t, "50")
	st := steps{signals: func() int {
		b, _ := os.ReadFile(p.Log)
		return strings.Count(string(b), "got SIGHUP")
	}}
	st.pr = testenv.Start(t, map[string]string{
		"CONFIG_DIR":                p.Dir,
		"PID_FILE":                  p.PIDFile,
		"RELOAD_VERIFY_LOG":         p.Log,
		"RELOAD_VERIFY_LOG_SUCCESS": "got SIGHUP, re-reading config",
		"RELOAD_VERIFY_LOG_FAILURE": "config file loading failed",
		"POLL_INTERVAL":             "100ms",
		"SETTLE_TIME":               "200ms",
	})

	p.Write(t, "123", "")
	st.valid(t, 1)
	p.WaitSetting(t, "max_client_conn", "123")
	t.Logf("valid: %s; SHOW CONFIG max_client_conn = 123", reloadState(t, st.pr))

	// pgbouncer has no check command: it gets the signal, and its log
	// says it refused the file.
	p.Write(t, "notanumber", "")
	st.invalid(t, false, 0)
	if p.Proc.Exited() {
		t.Fatalf("pgbouncer exited: %v", p.Proc.Wait(0))
	}
	got, err := p.Setting(t.Context(), "max_client_conn")
	if err != nil {
		t.Fatalf("pgbouncer's console does not answer after the refused config: %v", err)
	}
	warn := logLines(st.pr, "config file loading failed")
	if len(warn) == 0 {
		t.Errorf("no log line quotes pgbouncer's failure:\n%s", st.pr.Output())
	}
	// pgbouncer 1.18 does not keep the old value: it falls back to the
	// default (100), as TestPgbouncerLogsAFailedLoadAndFallsBackToDefaults
	// shows. The rejection is what tells the operator.
	t.Logf("invalid: %s; pgbouncer alive, SHOW CONFIG max_client_conn = %s (its default; 1.18 does not keep the old 123); log: %s",
		reloadState(t, st.pr), got, strings.Join(warn, " | "))

	p.Write(t, "150", "")
	st.valid(t, 2)
	p.WaitSetting(t, "max_client_conn", "150")
	t.Logf("fix: %s; SHOW CONFIG max_client_conn = 150", reloadState(t, st.pr))
}

func TestSourcesNginx(t *testing.T) {
	nginx := testenv.RequireTool(t, "nginx", "nginx-light")
	work := t.TempDir()
	dir := filepath.Join(work, "config")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf, errLog := filepath.Join(dir, "nginx.conf"), filepath.Join(work, "error.log")
	port := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	write := func(body, extra string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(testenv.NginxConf(work, port, body, extra)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("v1", "")
	master := testenv.Spawn(t, "nginx", exec.Command(nginx, "-p", work, "-e", errLog, "-c", conf, "-g", "daemon off;"))
	master.Grace = 5 * time.Second
	waitBody(t, url, "v1\n")
	st := steps{signals: func() int {
		b, _ := os.ReadFile(errLog)
		n := 0
		for _, m := range nginxSignal.FindAllStringSubmatch(string(b), -1) {
			if m[1] == fmt.Sprint(master.PID()) {
				n++
			}
		}
		return n
	}}
	st.pr = testenv.Start(t, map[string]string{
		"CONFIG_DIR":           dir,
		"PID_FILE":             filepath.Join(work, "nginx.pid"),
		"RELOAD_CHECK_COMMAND": fmt.Sprintf("%s -t -p %s -e %s -c %s", nginx, work, errLog, conf),
		"RELOAD_VERIFY":        "children",
		"POLL_INTERVAL":        "100ms",
		"SETTLE_TIME":          "200ms",
	})

	st.validInvalidFix(t, app{
		name:   "nginx",
		write:  write,
		serves: func(v string) { waitBody(t, url, v+"\n") },
		exited: func() (bool, error) { return master.Exited(), master.Wait(0) },
		bad:    "no_such_directive on;",
		why:    []string{"no_such_directive"},
	}, true)
}

// TestSourcesChildrenRefusedWhereThereAreNoWorkers is issue 21 point 16's
// second half and issue 17's sshd row: RELOAD_VERIFY=children on sshd
// (whose children are sessions) or on a process without children would
// wait for workers that never come; pollreload refuses it at start and in
// check, naming the setting to use.
func TestSourcesChildrenRefusedWhereThereAreNoWorkers(t *testing.T) {
	s := testenv.StartSSHD(t, "v1")
	for _, args := range [][]string{nil, {"check"}} {
		res := testenv.Run(t, 60*time.Second, map[string]string{
			"CONFIG_DIR": s.Dir, "PID_FILE": s.PIDFile, "RELOAD_VERIFY": "children", "METRICS_ADDR": "",
		}, args...)
		if res.ExitCode != 2 || !strings.Contains(res.Stderr, "RELOAD_VERIFY=children: verify children: pid") ||
			!strings.Contains(res.Stderr, "sshd's children are the sessions of connected users") || !strings.Contains(res.Stderr, "use RELOAD_VERIFY=exec") {
			t.Errorf("pollreload %v with RELOAD_VERIFY=children on sshd: exit %d\n%s\nwant exit 2 naming RELOAD_VERIFY=exec", args, res.ExitCode, res.Stderr)
		}
		t.Logf("sshd, %v: exit %d: %s", args, res.ExitCode, strings.TrimSpace(res.Stderr))
	}

	// A process with no children at all.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	lone := testenv.Spawn(t, "sleep", exec.Command("sleep", "300"))
	pidFile := filepath.Join(t.TempDir(), "lone.pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprint(lone.PID())), 0o644); err != nil {
		t.Fatal(err)
	}
	res := testenv.Run(t, 60*time.Second, map[string]string{
		"CONFIG_DIR": dir, "PID_FILE": pidFile, "RELOAD_VERIFY": "children", "METRICS_ADDR": "",
	})
	if res.ExitCode != 2 || !strings.Contains(res.Stderr, "had no children before SIGHUP") || !strings.Contains(res.Stderr, "RELOAD_VERIFY=children is for master/worker servers") {
		t.Errorf("pollreload with RELOAD_VERIFY=children on a process without children: exit %d\n%s\nwant exit 2 with the fix", res.ExitCode, res.Stderr)
	}
	t.Logf("no children: exit %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
}
