package faults

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

// bindfsMount is a bindfs process mirroring backing at mnt, which tests
// kill or unmount and mount again.
type bindfsMount struct {
	t            *testing.T
	backing, mnt string
	proc         *testenv.Process
}

// newBindfs mounts backing at mnt with bindfs; testenv unmounts it at
// cleanup.
func newBindfs(t *testing.T, backing, mnt string) *bindfsMount {
	t.Helper()
	requireFUSE(t)
	b := &bindfsMount{t: t, backing: backing, mnt: mnt}
	b.mount()
	return b
}

// mount starts bindfs (again), first detaching a dead mount left by kill.
func (b *bindfsMount) mount() {
	b.t.Helper()
	if err := testenv.Unmount(b.mnt); err != nil {
		b.t.Fatalf("detach %s: %v", b.mnt, err)
	}
	b.proc = testenv.MountBindfs(b.t, b.backing, b.mnt)
}

// kill kills bindfs with SIGKILL: the mount stays, and every access to it
// fails with ENOTCONN ("transport endpoint is not connected").
func (b *bindfsMount) kill() {
	b.t.Helper()
	if err := b.proc.Signal(syscall.SIGKILL); err != nil {
		b.t.Fatal(err)
	}
	b.proc.Wait(waitShort)
	if _, err := os.Stat(b.mnt); !errors.Is(err, syscall.ENOTCONN) {
		b.t.Fatalf("stat of a mount whose bindfs was killed: got %v; want %v", err, syscall.ENOTCONN)
	}
}

// lazyUnmount detaches the mount as `umount -l` does: the mount point turns
// back into the empty directory underneath it.
func (b *bindfsMount) lazyUnmount() {
	b.t.Helper()
	if err := testenv.Unmount(b.mnt); err != nil {
		b.t.Fatalf("lazy unmount: %v", err)
	}
	b.proc.Wait(waitShort)
}

// TestBindfsMountLost takes a bindfs mount away under a running daemon in
// the ways a FUSE or network mount goes: its server dies (ENOTCONN), or it
// is lazily unmounted (the watched path turns into an empty directory, or
// disappears when the daemon watches a directory inside the mount). Each
// time: no reload while it is gone, the error counted, nothing delivered
// when it comes back unchanged, one reload when it comes back changed.
func TestBindfsMountLost(t *testing.T) {
	tests := []struct {
		name string
		sub  string // directory inside the mount that pollreload watches
		lose func(b *bindfsMount)
		kind string // required scan error kind; "" accepts any kind
	}{
		{name: "bindfs killed", lose: (*bindfsMount).kill, kind: "not_connected"},
		{name: "lazy unmount of the watched mount point", lose: (*bindfsMount).lazyUnmount},
		{name: "lazy unmount above the watched directory", sub: "conf", lose: (*bindfsMount).lazyUnmount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			backing, mnt := t.TempDir(), t.TempDir()
			files := map[string]string{"app.conf": "listen 80\n", "conf.d/tls.conf": "ssl on\n"}
			writeFiles(t, filepath.Join(backing, tt.sub), files)
			b := newBindfs(t, backing, mnt)
			r := startRig(t, filepath.Join(mnt, tt.sub), nil)
			r.waitScans("ok", 2)

			lose := func(when string) {
				var labels map[string]string
				if tt.kind != "" {
					labels = map[string]string{"kind": tt.kind}
				}
				errs := r.metric("pollreload_scan_errors_total", labels)
				tt.lose(b)
				r.waitErrors(labels, errs+3, when)
				r.wantReloads(when, 0)
				if got := r.metric("pollreload_watched_files", nil); got != float64(len(files)) {
					t.Errorf("%s: pollreload_watched_files = %v; want %d (last good state kept)", when, got, len(files))
				}
			}

			lose("while the mount is gone")
			b.mount()
			r.waitScans("ok", quietScans)
			r.wantReloads("after the mount came back unchanged", 0)

			lose("while the mount is gone again")
			writeFiles(t, filepath.Join(backing, tt.sub), map[string]string{"app.conf": "listen 8080\n"})
			b.mount()
			r.waitReloads("after the mount came back changed", 1)
		})
	}
}
