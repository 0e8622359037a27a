package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pollreload/pollreload/internal/testenv"
)

// TestCopyCommand runs `pollreload copy`, the init container of wrapper mode
// in a pod, as a real binary: into a writable directory it leaves a copy
// every UID may run and that answers --version; into a read-only or a noexec
// mount it fails with exit 1 and a line that says what to change in the pod.
func TestCopyCommand(t *testing.T) {
	bin := testenv.BuildPollreload(t)
	run := func(t *testing.T, dest string) (string, int) {
		t.Helper()
		out, err := exec.Command(bin, "copy", dest).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	// tmpfs mounts a tmpfs with flags on a new directory, unmounted at cleanup.
	tmpfs := func(t *testing.T, flags uintptr) string {
		t.Helper()
		if os.Geteuid() != 0 {
			t.Skip("mounting a tmpfs needs root")
		}
		dir := t.TempDir()
		if err := unix.Mount("tmpfs", dir, "tmpfs", flags, "size=64m"); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", dir, err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(dir, 0); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		})
		return dir
	}

	t.Run("into an emptyDir-like directory", func(t *testing.T) {
		dir := t.TempDir()
		out, code := run(t, dir)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		dest := filepath.Join(dir, "pollreload")
		if !strings.HasPrefix(out, "copied pollreload to "+dest) || !strings.Contains(out, "the copy runs: pollreload ") {
			t.Errorf("got %q; want it to name %s and the copy's --version", out, dest)
		}
		fi, err := os.Stat(dest)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o555 {
			t.Errorf("copy has mode %v; want -r-xr-xr-x (any UID runs it, none rewrites it)", fi.Mode().Perm())
		}
		want, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("copy differs from the binary (%d bytes; want %d)", len(got), len(want))
		}
		left, _ := filepath.Glob(filepath.Join(dir, ".pollreload-copy-*"))
		if len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
		// A restarted init container copies over the earlier copy.
		if out, code := run(t, dest); code != 0 {
			t.Errorf("second copy onto %s: exit %d: %s", dest, code, out)
		}
	})

	t.Run("read-only volume", func(t *testing.T) {
		dir := tmpfs(t, unix.MS_RDONLY)
		out, code := run(t, dir)
		if code != 1 || !strings.Contains(out, "read-only file system") || !strings.Contains(out, "without readOnly") {
			t.Errorf("exit %d, %q; want exit 1 naming the read-only volume and the fix", code, out)
		}
	})

	t.Run("noexec volume", func(t *testing.T) {
		dir := tmpfs(t, unix.MS_NOEXEC)
		out, code := run(t, dir)
		if code != 1 || !strings.Contains(out, "does not run here") || !strings.Contains(out, "noexec") {
			t.Errorf("exit %d, %q; want exit 1 saying the copy does not run, naming noexec", code, out)
		}
	})
}

// TestCopiedBinaryOfAnotherMachine runs, as the copy's check does, a file
// whose ELF header names a machine no kernel runs: the kernel refuses it
// (ENOEXEC, as for an arm64 binary on an amd64 node without emulation), and
// the error says so.
func TestCopiedBinaryOfAnotherMachine(t *testing.T) {
	elf := make([]byte, 64)
	copy(elf, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(elf[16:], 2)      // e_type: executable
	binary.LittleEndian.PutUint16(elf[18:], 0xfeed) // e_machine: none known
	binary.LittleEndian.PutUint32(elf[20:], 1)      // e_version
	path := filepath.Join(t.TempDir(), "pollreload")
	if err := os.WriteFile(path, elf, 0o555); err != nil {
		t.Fatal(err)
	}
	_, err := runCopied(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "exec format error") || !strings.Contains(err.Error(), "another architecture") {
		t.Errorf("got %v; want exec format error naming another architecture", err)
	}
}
