package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// These tests prove issue 17's check before the delivery on a real nginx:
// RELOAD_CHECK_COMMAND runs nginx -t before the signal, so a configuration
// nginx would refuse never reaches it.

// nginxSighups counts the SIGHUPs nginx's master logged receiving.
func nginxSighups(t *testing.T, errorLog string) int {
	t.Helper()
	b, err := os.ReadFile(errorLog)
	if err != nil {
		t.Fatal(err)
	}
	return len(nginxSignal.FindAllSubmatch(b, -1))
}

// checkedNginx runs nginx with its configuration in its own directory; write
// replaces the configuration (a body, and directives nginx -t may refuse).
type checkedNginx struct {
	bin, work, dir, conf, errorLog, url string
	master                              *testenv.Process
	port                                int
}

func startCheckedNginx(t *testing.T) *checkedNginx {
	t.Helper()
	n := &checkedNginx{bin: testenv.RequireTool(t, "nginx", "nginx-light"), work: t.TempDir(), port: testenv.FreePort(t)}
	n.dir = filepath.Join(n.work, "config")
	if err := os.Mkdir(n.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n.conf = filepath.Join(n.dir, "nginx.conf")
	n.errorLog = filepath.Join(n.work, "error.log")
	n.url = fmt.Sprintf("http://127.0.0.1:%d/", n.port)
	n.write(t, "version 1", "")
	n.master = testenv.Spawn(t, "nginx", exec.Command(n.bin, "-p", n.work, "-e", n.errorLog, "-c", n.conf, "-g", "daemon off;"))
	n.master.Grace = 5 * time.Second
	waitBody(t, n.url, "version 1\n")
	return n
}

func (n *checkedNginx) write(t *testing.T, body, extra string) {
	t.Helper()
	if err := os.WriteFile(n.conf, []byte(testenv.NginxConf(n.work, n.port, body, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkCommand is the nginx -t a user would give, on this nginx's files.
func (n *checkedNginx) checkCommand() string {
	return fmt.Sprintf("%s -t -p %s -e %s -c %s", n.bin, n.work, n.errorLog, n.conf)
}

// TestCheckCommandNginx: a good change passes nginx -t and is delivered; a
// change nginx -t refuses is rejected without nginx receiving any signal,
// the gauge reads 0, the log carries nginx's own words, and the check is
// not run again while the content stays; the fix is delivered.
func TestCheckCommandNginx(t *testing.T) {
	t.Parallel()
	n := startCheckedNginx(t)
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":           n.dir,
		"PID_FILE":             filepath.Join(n.work, "nginx.pid"),
		"RELOAD_CHECK_COMMAND": n.checkCommand(),
		"POLL_INTERVAL":        "100ms",
		"SETTLE_TIME":          "200ms",
	})

	n.write(t, "version 2", "")
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "success"}, 1)
	waitBody(t, n.url, "version 2\n")
	hups := nginxSighups(t, n.errorLog)
	if hups != 1 {
		t.Errorf("nginx logged %d SIGHUPs after one good change; want 1", hups)
	}
	t.Logf("good change: %s; nginx got %d SIGHUP", reloadState(t, pr), hups)

	n.write(t, "version 3", "no_such_directive on;")
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "rejected"}, 1)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 0)
	waitScans(t, pr, 10) // time for a wrong second run or a signal to show
	if got := nginxSighups(t, n.errorLog); got != hups {
		t.Errorf("nginx logged %d SIGHUPs after the refused change; want still %d: no signal may reach it", got, hups)
	}
	waitBody(t, n.url, "version 2\n")
	rejected := logLines(pr, "rejected", "RELOAD_CHECK_COMMAND")
	if len(rejected) != 1 || !strings.Contains(rejected[0], "exit status 1") || !strings.Contains(rejected[0], `unknown directive \"no_such_directive\"`) {
		t.Errorf("log lines on the rejection: %q; want one, with exit status 1 and nginx's [emerg]", rejected)
	}
	if got := reloadsBy(t, pr, "rejected"); got != 1 {
		t.Errorf(`reloads_total{result="rejected"} = %v after 10 more scans; want 1 (not checked again until the content changes)`, got)
	}
	t.Logf("refused change: %s; nginx got no signal, serves version 2; log: %s", reloadState(t, pr), strings.Join(rejected, " | "))

	n.write(t, "version 4", "")
	waitMetric(t, pr, "pollreload_reloads_total", map[string]string{"result": "success"}, 2)
	waitMetric(t, pr, "pollreload_last_reload_successful", nil, 1)
	waitBody(t, n.url, "version 4\n")
	if got := nginxSighups(t, n.errorLog); got != hups+1 {
		t.Errorf("nginx logged %d SIGHUPs after the fix; want %d", got, hups+1)
	}
	t.Logf("fix: %s; serves version 4", reloadState(t, pr))
}

// TestCheckCommandNoVerdict: a check command that does not exist, and one
// that hangs past RELOAD_CHECK_TIMEOUT, are check_error, retried; nginx
// gets no signal and nothing counts rejected.
func TestCheckCommandNoVerdict(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, command, shell, want string }{
		{"missing", "/nonexistent/nginx -t", "false", "no such file or directory"},
		{"hangs", "sleep 600", "false", "ran past its timeout of 300ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := startCheckedNginx(t)
			pr := testenv.Start(t, map[string]string{
				"CONFIG_DIR":           n.dir,
				"PID_FILE":             filepath.Join(n.work, "nginx.pid"),
				"RELOAD_CHECK_COMMAND": tt.command,
				"RELOAD_CHECK_TIMEOUT": "300ms",
				"POLL_INTERVAL":        "100ms",
				"SETTLE_TIME":          "200ms",
			})
			n.write(t, "version 2", "")
			testenv.WaitFor(t, deliveryTimeout, func() error {
				if got := reloadsBy(t, pr, "check_error"); got < 2 {
					return fmt.Errorf(`reloads_total{result="check_error"} = %v; want a retry`, got)
				}
				return nil
			})
			if got := nginxSighups(t, n.errorLog); got != 0 {
				t.Errorf("nginx logged %d SIGHUPs without a verdict from the check; want 0", got)
			}
			if got := reloadsBy(t, pr, "rejected") + reloadsBy(t, pr, "success"); got != 0 {
				t.Errorf("rejected + success = %v; want 0: no verdict is neither", got)
			}
			if got := pr.Metric(t, "pollreload_reload_pending", nil); got != 1 {
				t.Errorf("reload_pending = %v; want 1", got)
			}
			lines := logLines(pr, "gave no verdict", tt.want)
			if len(lines) == 0 {
				t.Errorf("no log line says the check gave no verdict (%q):\n%s", tt.want, pr.Output())
			} else {
				t.Logf("%s: %s", reloadState(t, pr), lines[0])
			}
		})
	}
}

// TestCheckSubcommandRunsTheCheck: pollreload check runs the check once on
// the current content and shows its split, exit code and output, URLs
// masked; a failing check is a problem (exit code 1).
func TestCheckSubcommandRunsTheCheck(t *testing.T) {
	t.Parallel()
	n := startCheckedNginx(t)
	n.write(t, "version 2", "no_such_directive on;")
	bin := testenv.BuildPollreload(t)
	run := func(command string, shell bool) (string, int) {
		cmd := exec.Command(bin, "check")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CONFIG_DIR=" + n.dir, "PID_FILE=" + filepath.Join(n.work, "nginx.pid"),
			"RELOAD_CHECK_COMMAND=" + command, fmt.Sprintf("RELOAD_CHECK_SHELL=%v", shell)}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee):
			return string(out), ee.ExitCode()
		}
		t.Fatal(err)
		return "", 0
	}
	out, code := run(n.checkCommand(), false)
	for _, want := range []string{
		"Check before the delivery: " + n.checkCommand() + " (run directly, split into words: [\"" + n.bin + "\" \"-t\"",
		"exit code 1 after ",
		`| nginx: [emerg] unknown directive "no_such_directive"`,
		"the check before the delivery fails on the current content (exit code 1)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("check exit code %d on a refused config; want 1", code)
	}
	t.Logf("pollreload check, refused config:\n%s", out)

	// A check whose output holds a URL with a token: masked.
	out, _ = run(`echo "fetched https://ci:tok-e2e-7731@conf.example/app?key=k-e2e-4410"; `+n.checkCommand(), true)
	if strings.Contains(out, "tok-e2e-7731") || strings.Contains(out, "k-e2e-4410") || !strings.Contains(out, "https://xxxxx:xxxxx@conf.example/app?key=xxxxx") {
		t.Errorf("check output shows a URL's secrets, or not the masked URL:\n%s", out)
	}

	n.write(t, "version 2", "")
	out, code = run(n.checkCommand(), false)
	if code != 0 || !strings.Contains(out, "exit code 0 after ") || !strings.Contains(out, "passes on the current content") {
		t.Errorf("check on a good config: exit code %d; want 0, saying it passes:\n%s", code, out)
	}
}
