package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireToolsEnv names the environment variable that turns a missing tool
// from a skip into a failure. CI sets it to 1 so that a broken install step
// cannot pass as a green run of skipped tests.
const RequireToolsEnv = "REQUIRE_TOOLS"

// RequireTool returns the absolute path of binary. When it is not installed
// the test is skipped with "BINARY not installed: apt-get install -y PKG", or,
// when REQUIRE_TOOLS=1, fails with the same message.
func RequireTool(t testing.TB, binary, aptPkg string) string {
	t.Helper()
	if path, ok := lookTool(binary); ok {
		return path
	}
	msg := binary + " not installed: apt-get install -y " + aptPkg
	if os.Getenv(RequireToolsEnv) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// lookTool finds binary on PATH or in the sbin directories, which a
// non-login PATH (cron, CI runners) often lacks although daemons such as
// nginx and sshd live there.
func lookTool(binary string) (string, bool) {
	if path, err := exec.LookPath(binary); err == nil {
		abs, err := filepath.Abs(path)
		return abs, err == nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		path := filepath.Join(dir, binary)
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return path, true
		}
	}
	return "", false
}
