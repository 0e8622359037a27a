package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runBounded runs the test binary as pollreload with env and args and
// returns its exit code and stderr. A run still going after a minute is
// killed and fails the test: the bugs these tests guard against are hangs.
func runBounded(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = program(t, "pollreload", env).Env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("pollreload %v with %v still running after a minute (killed); stderr %q", args, env, stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), strings.TrimSpace(stderr.String())
}

// TestConfigDirSpecialFiles points CONFIG_DIR at things that are not
// configuration: a FIFO (opening it blocked start and check forever), a link
// to one, devices, a socket, and the kernel's pseudo-filesystems. Each exits
// 2 at once, with one line naming the path and what is accepted.
func TestConfigDirSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "conf")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	const want = "; want a directory or a regular file"
	tests := []struct{ path, want string }{
		{fifo, `invalid CONFIG_DIR="` + fifo + `": is a FIFO (named pipe)` + want},
		{link, `invalid CONFIG_DIR="` + link + `": is a FIFO (named pipe) (it resolves to ` + fifo + ")" + want},
		{"/dev/null", `invalid CONFIG_DIR="/dev/null": is a character device` + want},
		{"/dev/zero", `invalid CONFIG_DIR="/dev/zero": is a character device` + want},
		{sock, `invalid CONFIG_DIR="` + sock + `": is a socket` + want},
		{"/proc", `invalid CONFIG_DIR="/proc": is on proc, a kernel pseudo-filesystem whose files are not configuration`},
		{"/proc/self/status", `invalid CONFIG_DIR="/proc/self/status": is on proc, a kernel pseudo-filesystem`},
		{"/sys/kernel", `invalid CONFIG_DIR="/sys/kernel": is on sysfs, a kernel pseudo-filesystem`},
	}
	for _, tt := range tests {
		for _, args := range [][]string{nil, {"check"}} {
			code, stderr := runBounded(t, []string{"CONFIG_DIR=" + dir + "," + tt.path, "PROCESS_NAME=app", "METRICS_ADDR="}, args...)
			if code != 2 || !strings.HasPrefix(stderr, "pollreload: "+tt.want) || strings.Contains(stderr, "\n") {
				t.Errorf("CONFIG_DIR=%s pollreload %v: exit %d, stderr %q; want exit 2 and one line starting %q", tt.path, args, code, stderr, "pollreload: "+tt.want)
			}
		}
		t.Logf("CONFIG_DIR=%s: exit 2: %s", tt.path, tt.want)
	}
}

// TestProcessNameRelativePath checks a PROCESS_NAME with a slash that is not
// an absolute path exits 2 instead of never matching anything.
func TestProcessNameRelativePath(t *testing.T) {
	code, stderr := runBounded(t, []string{"CONFIG_DIR=" + t.TempDir(), "PROCESS_NAME=nginx,bin/app", "METRICS_ADDR="})
	want := `pollreload: invalid PROCESS_NAME="bin/app": a name with / is matched as a path and must be absolute, such as /usr/sbin/nginx; otherwise want a base name such as nginx`
	if code != 2 || stderr != want {
		t.Errorf("PROCESS_NAME=nginx,bin/app: exit %d, stderr %q; want exit 2, %q", code, stderr, want)
	}
}

// TestPIDFileSpecialFileAtStart checks a PID_FILE that is already a FIFO or
// a device when pollreload starts exits 2, as a bad CONFIG_DIR does.
func TestPIDFileSpecialFileAtStart(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "app.pid")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		fifo:        `pollreload: invalid PID_FILE="` + fifo + `": is a FIFO (named pipe); want a regular file holding the app's PID`,
		"/dev/null": `pollreload: invalid PID_FILE="/dev/null": is a character device; want a regular file holding the app's PID`,
		dir:         `pollreload: invalid PID_FILE="` + dir + `": is a directory; want a regular file holding the app's PID`,
	} {
		code, stderr := runBounded(t, []string{"CONFIG_DIR=" + dir, "PID_FILE=" + path, "METRICS_ADDR="})
		if code != 2 || stderr != want {
			t.Errorf("PID_FILE=%s: exit %d, stderr %q; want exit 2, %q", path, code, stderr, want)
		}
	}
	// Not there yet is fine: the app writes it when it starts.
	code, stderr := runBounded(t, []string{"CONFIG_DIR=" + dir, "PID_FILE=" + filepath.Join(dir, "later.pid"), "METRICS_ADDR="}, "check")
	if code == 2 {
		t.Errorf("PID_FILE not yet written: exit 2 (%s); want the check to run", stderr)
	}
}
