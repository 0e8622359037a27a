package faultfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/faults/faultfs"
	"github.com/pollreload/pollreload/internal/testenv"
)

// requireFUSE skips (or fails under REQUIRE_TOOLS=1) when FUSE is missing.
func requireFUSE(t *testing.T) {
	t.Helper()
	testenv.RequireTool(t, "fusermount", "fuse3")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		msg := "/dev/fuse missing: run the container with --device /dev/fuse"
		if os.Getenv(testenv.RequireToolsEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// mount mirrors a fresh backing directory holding a file, a directory and a
// symlink, and unmounts at the end of the test.
func mount(t *testing.T) (fsys *faultfs.FS, backing, mnt string) {
	t.Helper()
	requireFUSE(t)
	backing, mnt = t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(backing, "app.conf"), []byte("listen 80\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(backing, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("app.conf", filepath.Join(backing, "link")); err != nil {
		t.Fatal(err)
	}
	fsys, err := faultfs.Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fsys.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return fsys, backing, mnt
}

func TestMirrorsBackingDirectory(t *testing.T) {
	_, backing, mnt := mount(t)

	got, err := os.ReadFile(filepath.Join(mnt, "app.conf"))
	if err != nil || string(got) != "listen 80\n" {
		t.Fatalf("read through mount: got %q, %v; want %q", got, err, "listen 80\n")
	}
	// A change underneath must show at once: nothing may be cached.
	if err := os.WriteFile(filepath.Join(backing, "app.conf"), []byte("listen 8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = os.ReadFile(filepath.Join(mnt, "app.conf"))
	if err != nil || string(got) != "listen 8080\n" {
		t.Fatalf("read after change underneath: got %q, %v; want %q", got, err, "listen 8080\n")
	}
	target, err := os.Readlink(filepath.Join(mnt, "link"))
	if err != nil || target != "app.conf" {
		t.Fatalf("readlink: got %q, %v; want %q", target, err, "app.conf")
	}
	entries, err := os.ReadDir(mnt)
	if err != nil || len(entries) != 3 {
		t.Fatalf("readdir: got %d entries, %v; want 3", len(entries), err)
	}
}

func TestFailInjectsErrno(t *testing.T) {
	// access performs the syscall that reaches op on the FUSE side.
	access := map[faultfs.Op]func(mnt string) error{
		faultfs.OpStat: func(mnt string) error {
			_, err := os.Lstat(filepath.Join(mnt, "app.conf"))
			return err
		},
		faultfs.OpOpen: func(mnt string) error {
			f, err := os.Open(filepath.Join(mnt, "app.conf"))
			if err == nil {
				f.Close()
			}
			return err
		},
		faultfs.OpRead: func(mnt string) error {
			_, err := os.ReadFile(filepath.Join(mnt, "app.conf"))
			return err
		},
		faultfs.OpReaddir: func(mnt string) error {
			_, err := os.ReadDir(filepath.Join(mnt, "conf.d"))
			return err
		},
		faultfs.OpReadlink: func(mnt string) error {
			_, err := os.Readlink(filepath.Join(mnt, "link"))
			return err
		},
	}
	pathOf := map[faultfs.Op]string{
		faultfs.OpStat:     "app.conf",
		faultfs.OpOpen:     "app.conf",
		faultfs.OpRead:     "app.conf",
		faultfs.OpReaddir:  "conf.d",
		faultfs.OpReadlink: "link",
	}
	errnos := []syscall.Errno{syscall.EIO, syscall.ESTALE, syscall.EACCES, syscall.ENOTCONN}

	fsys, _, mnt := mount(t)
	for op, do := range access {
		for _, errno := range errnos {
			t.Run(string(op)+"/"+errno.Error(), func(t *testing.T) {
				p := pathOf[op]
				before := fsys.Hits(p, op)
				fsys.Fail(p, op, errno)
				err := do(mnt)
				fsys.Clear()
				if !errors.Is(err, errno) {
					t.Errorf("%s with fault: got %v; want %v", op, err, errno)
				}
				if fsys.Hits(p, op) == before {
					t.Errorf("hits for %s %s: got %d; want more", op, p, before)
				}
				if err := do(mnt); err != nil {
					t.Errorf("%s after Clear: got %v; want nil", op, err)
				}
			})
		}
	}
}

func TestFailAnyPath(t *testing.T) {
	fsys, _, mnt := mount(t)
	fsys.Fail(faultfs.AnyPath, faultfs.OpStat, syscall.ESTALE)
	_, err := os.Stat(filepath.Join(mnt, "conf.d"))
	fsys.Clear()
	if !errors.Is(err, syscall.ESTALE) {
		t.Fatalf("stat with AnyPath fault: got %v; want %v", err, syscall.ESTALE)
	}
}

func TestHangBlocksUntilClear(t *testing.T) {
	fsys, _, mnt := mount(t)
	fsys.Hang("app.conf", faultfs.OpRead)

	done := make(chan error, 1)
	go func() {
		_, err := os.ReadFile(filepath.Join(mnt, "app.conf"))
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for fsys.Hung() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("read never reached the hang")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Other requests keep being served while one hangs.
	if _, err := os.Stat(filepath.Join(mnt, "conf.d")); err != nil {
		t.Fatalf("stat while another read hangs: got %v; want nil", err)
	}
	select {
	case err := <-done:
		t.Fatalf("read returned while hung: %v", err)
	case <-time.After(200 * time.Millisecond):
	}

	fsys.Clear()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("released read: got %v; want %v", err, syscall.EIO)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read still hung after Clear")
	}
	if n := fsys.Hung(); n != 0 {
		t.Fatalf("hung after Clear: got %d; want 0", n)
	}
}
