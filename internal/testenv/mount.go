package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MountFUSE starts cmd, a FUSE file system that runs in the foreground
// (bindfs -f, sshfs -f), and waits until mountpoint is mounted. At cleanup,
// also on failure, it unmounts lazily (so a busy mount cannot keep it) before
// the process is stopped, and fails the test if the mount is still there.
func MountFUSE(t testing.TB, name string, cmd *exec.Cmd, mountpoint string) *Process {
	t.Helper()
	mp, err := filepath.EvalSymlinks(mountpoint)
	if err != nil {
		t.Fatalf("mount point: %v", err)
	}
	note("mounts", mp)
	p := Spawn(t, name, cmd)
	// Registered after Spawn's cleanup, so it runs before it.
	t.Cleanup(func() {
		if err := Unmount(mp); err != nil {
			t.Errorf("unmount %s: %v", mp, err)
		}
	})
	WaitFor(t, 30*time.Second, func() error {
		if p.Exited() {
			t.Fatalf("%s exited before mounting %s (%v):\n%s", name, mp, p.Wait(0), p.Output())
		}
		if ok, err := Mounted(mp); err != nil || !ok {
			return fmt.Errorf("%s not mounted yet (err %v)", mp, err)
		}
		return nil
	})
	return p
}

// MountBindfs mounts backing at mountpoint with bindfs, a FUSE file system
// that mirrors a directory. Changes made in backing reach the mount's
// readers, but no inotify event does: the kernel raises those only for
// operations that pass through the mount.
func MountBindfs(t testing.TB, backing, mountpoint string) *Process {
	t.Helper()
	bindfs := RequireTool(t, "bindfs", "bindfs")
	RequireTool(t, "fusermount", "fuse3")
	return MountFUSE(t, "bindfs", exec.Command(bindfs, "-f", backing, mountpoint), mountpoint)
}

// Mounted reports whether a file system is mounted at mountpoint (which must
// be a clean absolute path without symlinks).
func Mounted(mountpoint string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Field 5 is the mount point, with space, tab, newline and
		// backslash octal-escaped.
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == mountpoint {
			return true, nil
		}
	}
	return false, sc.Err()
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// Unmount detaches whatever is mounted at mountpoint (every layer), lazily:
// fusermount -u -z first, as an unprivileged user would, then umount2 with
// MNT_DETACH. Nothing mounted is not an error.
func Unmount(mountpoint string) error {
	for i := 0; i < 10; i++ {
		ok, err := Mounted(mountpoint)
		if err != nil || !ok {
			return err
		}
		fuse := "fusermount3"
		if _, err := exec.LookPath(fuse); err != nil {
			fuse = "fusermount"
		}
		if err := exec.Command(fuse, "-u", "-z", mountpoint).Run(); err != nil {
			syscall.Unmount(mountpoint, syscall.MNT_DETACH)
		}
	}
	if ok, _ := Mounted(mountpoint); ok {
		return fmt.Errorf("still mounted")
	}
	return nil
}

// SharedDir returns a new directory that every user can read and enter, for
// daemons that drop root (pgbouncer, nginx workers) and must still read
// their configuration. t.TempDir is private to root. It is removed at
// cleanup.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "testenv-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
