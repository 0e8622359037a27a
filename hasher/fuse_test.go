package hasher

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// bindfsMount mounts src on a new directory with bindfs running in the
// foreground, waits until the mount is live and returns the mount point and
// the bindfs process. The mount is detached at cleanup.
func bindfsMount(t *testing.T, src, mnt string) *exec.Cmd {
	t.Helper()
	bindfs := requireTool(t, "bindfs", "bindfs")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	must(t, os.MkdirAll(mnt, 0o755))
	var before unix.Stat_t
	must(t, unix.Stat(mnt, &before))
	cmd := exec.Command(bindfs, "-f", src, mnt)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Unmount(mnt, unix.MNT_DETACH)
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		var st unix.Stat_t
		if unix.Stat(mnt, &st) == nil && st.Dev != before.Dev {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Skip("bindfs did not mount within 10s (FUSE unavailable here?)")
		}
		time.Sleep(10 * time.Millisecond)
	}
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
		cmd := bindfsMount(t, src, mnt)
		h := New(Options{})
		mustScan(t, h, mnt)
		must(t, cmd.Process.Kill())
		cmd.Wait()
		_, err := h.Scan(context.Background(), mnt)
		if got := ErrorKind(err); got != "not_connected" {
			t.Errorf("Scan of a dead mount: err %v, kind %q; want not_connected", err, got)
		}
	})
	t.Run("subdirectory", func(t *testing.T) {
		root := filepath.Join(base, "tree")
		writeFile(t, filepath.Join(root, "top"), "t")
		cmd := bindfsMount(t, src, filepath.Join(root, "mnt"))
		h := New(Options{})
		first := mustScan(t, h, root)
		if got := paths(first); !slices.Equal(got, []string{"mnt/inner", "top"}) {
			t.Fatalf("files = %q", got)
		}
		must(t, cmd.Process.Kill())
		cmd.Wait()
		snap := mustScan(t, h, root)
		if got := errorKinds(snap); !slices.Equal(got, []string{"mnt=not_connected"}) {
			t.Errorf("errors = %q; want [mnt=not_connected]", got)
		}
		if snap.Digest != first.Digest {
			t.Errorf("a dead mount changed the digest: files %q", paths(snap))
		}
	})
}
