package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestHashQuotesOddNames hashes a directory whose file names hold a
// newline, a tab, an escape sequence and a bidi override, beside ordinary
// and non-ASCII names: the odd ones are printed quoted, so that no name can
// forge a line of its own, and the ordinary ones stay as they are.
func TestHashQuotesOddNames(t *testing.T) {
	dir := t.TempDir()
	names := map[string]string{
		"plain.conf":                "plain.conf",
		"ünïcödé.conf":              "ünïcödé.conf",
		"with space.conf":           "with space.conf",
		"evil\n0000000000000000  1": `"evil\n0000000000000000  1"`,
		"tab\there":                 `"tab\there"`,
		"esc\x1b[31mred":            `"esc\x1b[31mred"`,
		"bidi\u202etxt.exe":         `"bidi\u202etxt.exe"`,
		`"quoted".conf`:             `"\"quoted\".conf"`,
	}
	for n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"hash", dir}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1+len(names) {
		t.Fatalf("hash printed %d lines; want %d (root + one per file):\n%s", len(lines), 1+len(names), out.String())
	}
	shown := make(map[string]bool)
	fileLine := regexp.MustCompile(`^  [0-9a-f]{16} +[0-9]+  (.*)$`)
	for _, l := range lines[1:] {
		m := fileLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q is not a file line", l)
		}
		shown[m[1]] = true
	}
	for n, want := range names {
		if !shown[want] {
			t.Errorf("file %q not shown as %s in:\n%s", n, want, out.String())
		}
	}
	t.Logf("pollreload hash:\n%s", out.String())
}

// TestCheckShowsArgv0AndExe runs check against a real process started
// under a long name with exec -a, so comm, argv[0] and the executable all
// differ, and checks the table shows each.
func TestCheckShowsArgv0AndExe(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), fmt.Sprintf("chkexe%d", os.Getpid()))
	if err := os.Link(os.Args[0], exe); err != nil {
		copyBinary(t, os.Args[0], exe)
	}
	long := fmt.Sprintf("myapplication-server-%d", os.Getpid())
	target := exec.Command(exe)
	target.Args[0] = long // exec -a
	target.Env = []string{"BE_TEST_PROGRAM=target"}
	tout, _ := target.StdoutPipe()
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Process.Kill(); target.Wait() })
	readLines(tout).waitLine(t, "ready", 10*time.Second)

	out, err := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=" + long}, "check").CombinedOutput()
	if err != nil {
		t.Fatalf("check = %v; want success\n%s", err, out)
	}
	var header, row string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "PID":
			header = strings.Join(f[:8], " ")
		case len(f) > 0 && f[0] == fmt.Sprint(target.Process.Pid):
			row = strings.Join(append(f[:2:2], f[5:7]...), " ")
		}
	}
	comm := filepath.Base(exe)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	if want := "PID NAME UID SELECTED CATCHES SIGHUP ARGV0 EXE"; header != want {
		t.Errorf("header %q; want %q\n%s", header, want, out)
	}
	if want := fmt.Sprintf("%d %s %s %s", target.Process.Pid, comm, long, exe); row != want {
		t.Errorf("row %q; want %q\n%s", row, want, out)
	}
	t.Logf("pollreload check:\n%s", out)
}

// TestCheckReportsZombie runs check while the only process of the name is
// a zombie: its parent (this test) has not waited for it yet.
func TestCheckReportsZombie(t *testing.T) {
	dir := t.TempDir()
	name := fmt.Sprintf("zmb%d", os.Getpid())
	bin := filepath.Join(t.TempDir(), name)
	if err := os.Symlink("/bin/true", bin); err != nil {
		t.Fatal(err)
	}
	z := exec.Command(bin)
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.Wait() })
	stat := fmt.Sprintf("/proc/%d/stat", z.Process.Pid)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err == nil && strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never became a zombie: %s %v", z.Process.Pid, b, err)
		}
	}
	out, err := program(t, "pollreload", []string{"CONFIG_DIR=" + dir, "PROCESS_NAME=" + name}, "check").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("check = %v; want exit code 1\n%s", err, out)
	}
	want := fmt.Sprintf("matches only a zombie: pid %d (%s, parent pid %d) has exited", z.Process.Pid, name, os.Getpid())
	if !strings.Contains(string(out), want) {
		t.Errorf("check output lacks %q:\n%s", want, out)
	}
	t.Logf("pollreload check:\n%s", out)
}

func copyBinary(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
