package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCheckShowsSources: check names each source it will use, runs the
// verification command once (its secrets masked), and makes an unreadable
// log a problem.
func TestCheckShowsSources(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	pidFile := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(sleeper.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"CONFIG_DIR=" + dir, "PID_FILE=" + pidFile, "METRICS_ADDR=", "RELOAD_FORCE=true",
		"RELOAD_VERIFY=exec",
		"RELOAD_VERIFY_LOG=" + filepath.Join(dir, "missing.log"), "RELOAD_VERIFY_LOG_SUCCESS=reloaded", "RELOAD_VERIFY_LOG_FAILURE=failed",
		"RELOAD_VERIFY_COMMAND=sh -c 'echo status of postgres://admin:pw-9c1e7b@db/x; exit 1'"}
	out, err := program(t, "pollreload", env, "check").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("check = %v; want exit code 1 (a problem)\n%s", err, out)
	}
	for _, want := range []string{
		"verify: RELOAD_VERIFY=exec: the process must re-execute itself",
		"verify: RELOAD_VERIFY_LOG " + filepath.Join(dir, "missing.log") + ` from its size at the delivery: success "reloaded", failure "failed"`,
		"RELOAD_VERIFY_LOG " + filepath.Join(dir, "missing.log") + " cannot be read",
		`verify: RELOAD_VERIFY_COMMAND "sh -c 'echo status of postgres://xxxxx:xxxxx@db/x; exit 1'" before the delivery and after it`,
		"now: exit status 1: status of postgres://xxxxx:xxxxx@db/x",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "pw-9c1e7b") {
		t.Errorf("check shows the password:\n%s", out)
	}
}
