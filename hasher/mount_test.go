package hasher

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

// TestUnmountedRootIsAnError lazily unmounts the filesystem mounted at the
// watched root. The empty directory underneath must not read as "every file
// deleted": the scan fails with kind not_connected until the mount is back.
func TestUnmountedRootIsAnError(t *testing.T) {
	testenv.RequireTool(t, "bindfs", "bindfs")
	backing := t.TempDir()
	if err := os.WriteFile(filepath.Join(backing, "app.conf"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	testenv.MountBindfs(t, backing, mnt)

	h := New(Options{})
	ctx := context.Background()
	before, err := h.Scan(ctx, mnt)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.Unmount(mnt); err != nil {
		t.Fatal(err)
	}
	_, err = h.Scan(ctx, mnt)
	if got := ErrorKind(err); got != "not_connected" {
		t.Fatalf("Scan of the bare mount point: err = %v, kind %q; want kind not_connected", err, got)
	}

	testenv.MountBindfs(t, backing, mnt)
	after, err := h.Scan(ctx, mnt)
	if err != nil {
		t.Fatalf("Scan after remounting: %v", err)
	}
	if after.Digest != before.Digest {
		t.Errorf("digest after remount = %x; want %x (same content)", after.Digest, before.Digest)
	}
}
