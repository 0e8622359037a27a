package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pollreload/pollreload/internal/testenv"
)

// These tests prove issue 17's application verdicts on Debian's packages:
// each application runs with its configuration in its own directory and
// pollreload signals it by PID_FILE. A valid change is counted success once
// and the application shows the new value; an invalid one is rejected (the
// gauge reads 0) while the application still answers with the old value;
// the fix is success again (gauge 1). Each case runs twice: with only the
// target named (the profile is recognised from the executable and finds
// its evidence on the command line), and with the settings
// docs/verification.md gives for the application.

// appCase is one application under test.
type appCase struct {
	name  string
	start func(t *testing.T) *testenv.App
	// settings are docs/verification.md's variables for the app.
	settings func(a *testenv.App, dir string) map[string]string
	// value reads back the value the application runs with.
	value func(t *testing.T, a *testenv.App) (string, error)
	// invalidResult is the result an invalid change is counted as.
	invalidResult string
	// values are the valid, invalid and fixed values written.
	values [3]string
	// signals counts the reload signals the application logged, nil
	// when it logs none; with a check command, the invalid change must not
	// add one.
	signals func(a *testenv.App) int
	// servesBroken is set for an application that runs the refused
	// configuration (uwsgi answers 500 without its app): it cannot keep the
	// old one, and pollreload can only say so.
	servesBroken bool
}

func getValue(path string) func(t *testing.T, a *testenv.App) (string, error) {
	return func(t *testing.T, a *testenv.App) (string, error) {
		code, body, err := httpGet(t.Context(), "http://"+a.Addr+path)
		if err != nil {
			return "", err
		}
		if code != 200 && code != 404 {
			return "", fmt.Errorf("GET %s: %d %s", path, code, body)
		}
		return strings.TrimSpace(body), nil
	}
}

func pgWorkMem(t *testing.T, a *testenv.App) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, a.Extra["dsn"])
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var v string
	err = conn.QueryRow(ctx, "SHOW work_mem").Scan(&v)
	return v, err
}

var appCases = []appCase{
	{
		name: "haproxy", start: func(t *testing.T) *testenv.App { return testenv.StartHAProxy(t, "one") },
		settings: func(a *testenv.App, _ string) map[string]string {
			return map[string]string{"RELOAD_APP": "haproxy", "RELOAD_APP_STATUS": a.Extra["socket"]}
		},
		value: getValue("/"), invalidResult: "rejected", values: [3]string{"two", "three", "four"},
		signals: func(a *testenv.App) int { return strings.Count(a.Output(), "Reloading HAProxy") },
	},
	{
		name: "uwsgi", start: func(t *testing.T) *testenv.App { return testenv.StartUWSGI(t, "one") },
		settings: func(a *testenv.App, _ string) map[string]string {
			return map[string]string{"RELOAD_APP": "uwsgi", "RELOAD_APP_STATUS": a.Extra["stats"]}
		},
		value: getValue("/"), invalidResult: "rejected", values: [3]string{"two", "three", "four"}, servesBroken: true,
	},
	{
		name: "postgresql", start: func(t *testing.T) *testenv.App { return testenv.StartPostgres(t, "4MB") },
		settings: func(a *testenv.App, dir string) map[string]string {
			f := filepath.Join(dir, "dsn")
			os.WriteFile(f, []byte(a.Extra["dsn"]+"\n"), 0o600)
			return map[string]string{"RELOAD_APP": "postgres", "RELOAD_APP_DSN_FILE": f}
		},
		value: pgWorkMem, invalidResult: "rejected", values: [3]string{"8MB", "8MB", "16MB"},
	},
	{
		// The profile's check (apache2 -t -d -f, from apache's command
		// line) keeps the broken configuration from apache, which would
		// exit on it.
		name: "apache", start: func(t *testing.T) *testenv.App { return testenv.StartApache(t, "one") },
		settings: func(a *testenv.App, _ string) map[string]string {
			return map[string]string{"RELOAD_APP": "apache2", "RELOAD_APP_STATUS": a.Extra["status"]}
		},
		value: getValue("/missing"), invalidResult: "rejected", values: [3]string{"two", "three", "four"},
		signals: func(a *testenv.App) int {
			b, _ := os.ReadFile(a.Extra["errorlog"])
			return strings.Count(string(b), "SIGUSR1 received")
		},
	},
}

// TestAppVerdicts runs every application in both modes, in parallel.
func TestAppVerdicts(t *testing.T) {
	t.Parallel()
	for _, c := range appCases {
		for _, mode := range []string{"default", "settings"} {
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				runAppCase(t, c, mode == "settings")
			})
		}
	}
}

func runAppCase(t *testing.T, c appCase, withSettings bool) {
	app := c.start(t)
	env := targetOnlyEnv(app.ConfDir, app.PIDFile)
	if withSettings {
		for k, v := range c.settings(app, t.TempDir()) {
			env[k] = v
		}
	}
	pr := testenv.Start(t, env)
	waitValue := func(want string) {
		t.Helper()
		testenv.WaitFor(t, deliveryTimeout, func() error {
			got, err := c.value(t, app)
			if err == nil && got != want {
				err = fmt.Errorf("%s runs with %q; want %q", c.name, got, want)
			}
			return err
		})
	}

	app.Write(t, c.values[0], false)
	waitVerifiedReloads(t, pr, 1)
	waitValue(c.values[0])
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 1)

	sent := -1
	if c.signals != nil {
		sent = c.signals(app)
	}
	app.Write(t, c.values[1], true)
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": c.invalidResult}, 1)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 0)
	if got := reloadsBy(t, pr, "success"); got != 1 {
		t.Errorf("after the invalid change: success = %v; want 1", got)
	}
	if c.invalidResult == "target_died" {
		t.Logf("%s: the invalid change took the app down (no check command wired): %v", c.name, app.Wait(0))
		return
	}
	if app.Exited() {
		t.Fatalf("%s exited on the invalid change: %v", c.name, app.Wait(0))
	}
	if c.signals != nil {
		if got := c.signals(app); got != sent {
			t.Errorf("%s logged %d reload signals after the invalid change; want %d: the check must keep it from the app", c.name, got, sent)
		}
	}
	if c.servesBroken {
		_, err := c.value(t, app)
		t.Logf("%s runs the refused configuration, as it does on its own: %v", c.name, firstLineOf(err))
	} else {
		waitValue(c.values[0])
	}

	app.Write(t, c.values[2], false)
	waitVerifiedReloads(t, pr, 2)
	waitValue(c.values[2])
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 1)
	if got := reloadsBy(t, pr, c.invalidResult); got != 1 {
		t.Errorf("%s = %v; want 1", c.invalidResult, got)
	}
	for _, l := range logLines(pr, "application profile") {
		t.Logf("start log: %s", l)
	}
	for _, l := range logLines(pr, "rejected") {
		t.Logf("log: %s", l)
	}
}

// TestPrometheusProfileRejects signals a real Prometheus by SIGHUP with no
// verification setting: the profile, recognised from the executable, reads
// /metrics at its --web.listen-address, so a refused config is rejected.
func TestPrometheusProfileRejects(t *testing.T) {
	t.Parallel()
	p := startVPrometheus(t, "one")
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR": p.dir, "PID_FILE": p.pidFile, "POLL_INTERVAL": "100ms", "SETTLE_TIME": "200ms",
	})
	p.write(t, fmt.Sprintf(vPromConfig, "two"))
	waitVerifiedReloads(t, pr, 1)
	if !strings.Contains(p.config(t), "job_name: two") {
		t.Errorf("prometheus does not run job two")
	}
	p.write(t, vBrokenYAML)
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "rejected"}, 1)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 0)
	if !strings.Contains(p.config(t), "job_name: two") || p.proc.Exited() {
		t.Errorf("prometheus does not run job two any more, or exited")
	}
	p.write(t, fmt.Sprintf(vPromConfig, "three"))
	waitVerifiedReloads(t, pr, 2)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 1)
	for _, l := range logLines(pr, "application profile") {
		t.Logf("start log: %s", l)
	}
}

func firstLineOf(err error) string {
	if err == nil {
		return "no error"
	}
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

// TestAppUnverifiedNamesSetting runs apache without a server-status page
// and only its PID file named: the profile can find no evidence, so a
// reload apache took is counted unverified, not success, and the start log
// and check name RELOAD_APP_STATUS.
func TestAppUnverifiedNamesSetting(t *testing.T) {
	t.Parallel()
	app := testenv.StartApacheNoStatus(t, "one")
	env := map[string]string{"CONFIG_DIR": app.ConfDir, "PID_FILE": app.PIDFile, "POLL_INTERVAL": "100ms", "SETTLE_TIME": "200ms"}
	res := testenv.Run(t, 30*time.Second, env, "check")
	if res.ExitCode == 0 || !strings.Contains(res.Stdout, "RELOAD_APP_STATUS") || !strings.Contains(res.Stdout, "profile apache") {
		t.Errorf("check: exit %d; want a problem naming RELOAD_APP_STATUS:\n%s\n%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	pr := testenv.Start(t, env)
	if len(logLines(pr, "application profile", "RELOAD_APP_STATUS")) == 0 {
		t.Errorf("the start log does not name RELOAD_APP_STATUS:\n%s", pr.Output())
	}
	app.Write(t, "two", false)
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "unverified"}, 1)
	if got := reloadsBy(t, pr, "success"); got != 0 {
		t.Errorf("success = %v; want 0 (apache's reload cannot be verified)", got)
	}
	testenv.WaitFor(t, deliveryTimeout, func() error {
		got, err := getValue("/missing")(t, app)
		if err == nil && got != "two" {
			err = fmt.Errorf("apache answers %q; want two", got)
		}
		return err
	})
	for _, l := range logLines(pr, "unverified") {
		t.Logf("log: %s", l)
	}
	t.Logf("check:\n%s", res.Stdout)
}

// TestHAProxyWrapperProfile runs haproxy -W as pollreload's child
// (pollreload -- haproxy ...), with nothing else set: the profile is
// recognised from the command, signals USR2, checks with haproxy -c before
// the signal and reads the master CLI named by -S.
func TestHAProxyWrapperProfile(t *testing.T) {
	t.Parallel()
	bin := testenv.RequireTool(t, "haproxy", "haproxy")
	app := testenv.HAProxyConfig(t, "one")
	pr := testenv.Start(t, map[string]string{"CONFIG_DIR": app.ConfDir, "POLL_INTERVAL": "100ms", "SETTLE_TIME": "200ms"},
		"--", bin, "-W", "-S", app.Extra["socket"], "-f", app.Conf)
	url := "http://" + app.Addr + "/"
	waitBody := func(want string) {
		t.Helper()
		testenv.WaitFor(t, deliveryTimeout, func() error {
			code, body, err := httpGet(t.Context(), url)
			if err == nil && (code != 200 || strings.TrimSpace(body) != want) {
				err = fmt.Errorf("haproxy answers %d %q; want %q", code, body, want)
			}
			return err
		})
	}
	waitBody("one")
	app.Write(t, "two", false)
	waitVerifiedReloads(t, pr, 1)
	waitBody("two")
	app.Write(t, "three", true)
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "rejected"}, 1)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 0)
	waitBody("two")
	if n := strings.Count(pr.Output(), "Reloading HAProxy"); n != 1 {
		t.Errorf("haproxy logged %d reloads; want 1: the check must keep the broken config from it", n)
	}
	app.Write(t, "four", false)
	waitVerifiedReloads(t, pr, 2)
	waitBody("four")
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 1)
	for _, l := range logLines(pr, "application profile") {
		t.Logf("start log: %s", l)
	}
}
