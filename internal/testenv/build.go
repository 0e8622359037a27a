package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Environment variables through which Main hands state to the tests and to
// the helper processes it re-executes. Environment instead of package
// variables: the same test binary runs as test driver and as helper.
const (
	// BinaryEnv may name a prebuilt pollreload to test instead of building
	// one (for example the binary from a release image).
	BinaryEnv = "TESTENV_POLLRELOAD_BINARY"
	// buildDirEnv names the directory where BuildPollreload builds the binary
	// once per test binary.
	buildDirEnv = "TESTENV_BUILD_DIR"
	// helperEnv switches a re-executed test binary into a helper process.
	helperEnv = "TESTENV_HELPER"
)

// ModulePath is the import path of the pollreload command.
const ModulePath = "github.com/pollreload/pollreload"

// Main runs the tests of a package that uses testenv and returns the exit
// code for os.Exit. When the test binary was re-executed as a helper process
// (see StartTarget) it runs that helper instead and never returns to the
// tests. Otherwise it prepares a build directory so that BuildPollreload
// compiles pollreload at most once for all tests, and removes it afterwards.
// After the tests it checks that every process group Spawn started and every
// mount MountFUSE made is gone; if not, it removes them and fails the run.
func Main(m *testing.M) int {
	if name := os.Getenv(helperEnv); name != "" {
		return runHelper(name)
	}
	if os.Getenv(BinaryEnv) == "" && os.Getenv(buildDirEnv) == "" {
		dir, err := os.MkdirTemp("", "testenv-build-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv: create build dir:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		// The variable also reaches every child; that is harmless, since
		// pollreload reads only its own variables and helpers ignore it.
		os.Setenv(buildDirEnv, dir)
	}
	ledger, err := os.MkdirTemp("", "testenv-ledger-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv: create ledger:", err)
		return 1
	}
	defer os.RemoveAll(ledger)
	os.Setenv(ledgerEnv, ledger)
	code := m.Run()
	// Cleanups run even for failed tests; this proves they did their job.
	if left := leftovers(ledger); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: tests left behind (now removed): %s\n", strings.Join(left, "; "))
		if code == 0 {
			code = 1
		}
	}
	return code
}

// BuildPollreload returns the path of a pollreload binary built with -race
// from this module's source, so that the race detector also watches the
// daemon while the end-to-end tests drive it. Under Main it builds once per
// test binary (tests in parallel wait for the first build); without Main it
// builds into the test's temporary directory. BinaryEnv overrides both.
func BuildPollreload(t testing.TB) string {
	t.Helper()
	if path := os.Getenv(BinaryEnv); path != "" {
		return path
	}
	dir := os.Getenv(buildDirEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	path, err := buildOnce(dir)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// buildOnce builds pollreload into dir unless an earlier caller (of this or
// another process) already did, or already failed; a build failure is kept
// in dir so that every test reports it instead of rebuilding.
func buildOnce(dir string) (string, error) {
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("open build lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock build dir: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	bin := filepath.Join(dir, "pollreload")
	failed := filepath.Join(dir, "build-error")
	if msg, err := os.ReadFile(failed); err == nil {
		return "", errors.New(string(msg))
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := goBuild(bin, ModulePath); err != nil {
		os.WriteFile(failed, []byte(err.Error()), 0o600)
		return "", err
	}
	return bin, nil
}

// goBuild compiles pkg with -race into out, from the module root so that the
// build sees this module's go.mod whatever directory the test runs in.
func goBuild(out, pkg string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-race", "-o", out, pkg)
	cmd.Dir = root
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build -race %s: %w\n%s", pkg, err, output.String())
	}
	return nil
}

// ModuleRoot returns the directory of the go.mod of the module under test.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}
