package hasher

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/pollreload/pollreload/faults/faultfs"
	"github.com/pollreload/pollreload/internal/testenv"
)

// TestLinkChainReadlinkFails makes a link in the middle of a chain
// unreadable (a FUSE READLINK failing, as faults/TestFUSEFaults does to
// current.conf). The scan reads the first link itself, but os.Root, which
// resolves the rest, reports the failed readlink as ELOOP: taken for a loop,
// the link was skipped and dropped from the snapshot, which changed the
// digest during a fault. It must be an error that keeps the last state.
func TestLinkChainReadlinkFails(t *testing.T) {
	testenv.RequireTool(t, "fusermount", "fuse3")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	backing, mnt := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(backing, "app.conf"), "listen 80\n")
	must(t, os.Symlink("app.conf", filepath.Join(backing, "mid.conf")))
	must(t, os.Symlink("mid.conf", filepath.Join(backing, "current.conf")))
	fsys, err := faultfs.Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fsys.Unmount(); err != nil {
			t.Errorf("unmount faultfs: %v", err)
		}
	})

	h := New(Options{})
	first := mustScan(t, h, mnt)
	if got := paths(first); !slices.Equal(got, []string{"app.conf", "current.conf", "mid.conf"}) {
		t.Fatalf("files = %q", got)
	}
	for _, errno := range []syscall.Errno{syscall.EIO, syscall.EACCES, syscall.ESTALE} {
		fsys.Fail("mid.conf", faultfs.OpReadlink, errno)
		snap := mustScan(t, h, mnt)
		hits := fsys.Hits("mid.conf", faultfs.OpReadlink)
		fsys.Clear()
		if hits == 0 {
			t.Fatalf("%v: the scan never met the fault", errno)
		}
		if got := paths(snap); !slices.Equal(got, paths(first)) {
			t.Errorf("%v: files = %q; want %q (skipped: %+v)", errno, got, paths(first), snap.Skipped)
		}
		if snap.Digest != first.Digest {
			t.Errorf("%v: a failing readlink changed the digest", errno)
		}
		if len(snap.Skipped) != 0 {
			t.Errorf("%v: skipped %+v; want none (a readlink error is no loop)", errno, snap.Skipped)
		}
		if got := errorKinds(snap); len(got) != 2 {
			t.Errorf("%v: errors = %q; want current.conf and mid.conf", errno, got)
		}
	}
	// A real loop is still a loop.
	must(t, os.Remove(filepath.Join(backing, "mid.conf")))
	must(t, os.Symlink("current.conf", filepath.Join(backing, "mid.conf")))
	snap := mustScan(t, h, mnt)
	var loops []string
	for _, sk := range snap.Skipped {
		if sk.Reason == "loop" {
			loops = append(loops, sk.Path)
		}
	}
	if !slices.Equal(loops, []string{"current.conf", "mid.conf"}) {
		t.Errorf("loops = %q; want [current.conf mid.conf] (skipped %+v, errors %q)", loops, snap.Skipped, errorKinds(snap))
	}
}
