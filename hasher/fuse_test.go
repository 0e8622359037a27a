package hasher

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/pollreload/pollreload/internal/testenv"
	"golang.org/x/sys/unix"
)

// bindfsMount mounts src on mnt (created if needed) with bindfs.
func bindfsMount(t *testing.T, src, mnt string) *testenv.Process {
	t.Helper()
	must(t, os.MkdirAll(mnt, 0o755))
	return testenv.MountBindfs(t, src, mnt)
}

// TestRacyRewriteDetected reproduces the racy case for real: FUSE (like NFS)
// answers stat from an attribute cache, so right after a rewrite of the
// same size the signature still looks unchanged. Because the file was hashed
// within the racy margin of its mtime, the next scan reads it again.
func TestRacyRewriteDetected(t *testing.T) {
	base := t.TempDir()
	src, mnt := filepath.Join(base, "src"), filepath.Join(base, "mnt")
	writeFile(t, filepath.Join(src, "f"), "aaaa")
	bindfsMount(t, src, mnt)

	h := New(Options{})
	first := mustScan(t, h, mnt)
	if first.Files["f"].Digest != xxhash.Sum64String("aaaa") {
		t.Fatalf("first scan: %+v", first.Files)
	}
	var seen unix.Stat_t
	must(t, unix.Lstat(filepath.Join(mnt, "f"), &seen))
	writeFile(t, filepath.Join(src, "f"), "bbbb") // behind the mount's back
	var cached unix.Stat_t
	must(t, unix.Lstat(filepath.Join(mnt, "f"), &cached))
	if cached.Mtim != seen.Mtim || cached.Ctim != seen.Ctim {
		t.Skip("the FUSE attribute cache already expired; the stat was not stale")
	}
	snap := mustScan(t, h, mnt)
	if got, want := snap.Files["f"].Digest, xxhash.Sum64String("bbbb"); got != want {
		t.Errorf("digest %x; want %x: a racy entry was trusted", got, want)
	}
}

// TestDeadMount kills the FUSE daemon behind a mount, which leaves the mount
// point answering ENOTCONN: as the root it fails the scan, inside a tree it
// is a per-directory error that keeps the last good entries.
func TestDeadMount(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	writeTree(t, src, map[string]string{"inner": "i"})
	t.Run("root", func(t *testing.T) {
		mnt := filepath.Join(base, "rootmnt")
		fuse := bindfsMount(t, src, mnt)
		h := New(Options{})
		mustScan(t, h, mnt)
		killFUSE(t, fuse)
		_, err := h.Scan(context.Background(), mnt)
		if got := ErrorKind(err); got != "not_connected" {
			t.Errorf("Scan of a dead mount: err %v, kind %q; want not_connected", err, got)
		}
	})
	t.Run("subdirectory", func(t *testing.T) {
		root := filepath.Join(base, "tree")
		writeFile(t, filepath.Join(root, "top"), "t")
		fuse := bindfsMount(t, src, filepath.Join(root, "mnt"))
		h := New(Options{})
		first := mustScan(t, h, root)
		if got := paths(first); !slices.Equal(got, []string{"mnt/inner", "top"}) {
			t.Fatalf("files = %q", got)
		}
		killFUSE(t, fuse)
		snap := mustScan(t, h, root)
		if got := errorKinds(snap); !slices.Equal(got, []string{"mnt=not_connected"}) {
			t.Errorf("errors = %q; want [mnt=not_connected]", got)
		}
		if snap.Digest != first.Digest {
			t.Errorf("a dead mount changed the digest: files %q", paths(snap))
		}
	})
}

// killFUSE kills a FUSE daemon without unmounting, which leaves its mount
// point answering ENOTCONN, as after an OOM kill.
func killFUSE(t *testing.T, p *testenv.Process) {
	t.Helper()
	must(t, p.Signal(syscall.SIGKILL))
	p.Wait(10 * time.Second)
}
