package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

// bindfsMount is a bindfs process mirroring backing at mnt.
type bindfsMount struct {
	t            *testing.T
	bindfs       string // path of the binary
	backing, mnt string
	proc         *testenv.Process
}

// newBindfs mounts backing at mnt with bindfs running in the foreground, so
// the test owns its PID. A cleanup registered first (and so run last)
// detaches whatever is still mounted at mnt.
func newBindfs(t *testing.T, backing, mnt string) *bindfsMount {
	t.Helper()
	requireFUSE(t)
	b := &bindfsMount{t: t, bindfs: testenv.RequireTool(t, "bindfs", "bindfs"), backing: backing, mnt: mnt}
	t.Cleanup(func() {
		for mounted(mnt) {
			if out, err := exec.Command("fusermount", "-u", "-z", mnt).CombinedOutput(); err != nil {
				t.Errorf("fusermount -u -z %s: %v: %s", mnt, err, out)
				return
			}
		}
	})
	b.mount()
	return b
}

// mount starts bindfs and waits until the mount is there.
func (b *bindfsMount) mount() {
	b.t.Helper()
	b.proc = testenv.Spawn(b.t, "bindfs", exec.Command(b.bindfs, "-f", "--no-allow-other", b.backing, b.mnt))
	testenv.WaitFor(b.t, waitShort, func() error {
		if b.proc.Exited() {
			b.t.Fatalf("bindfs exited: %v\n%s", b.proc.Wait(0), b.proc.Output())
		}
		if !mounted(b.mnt) {
			return fmt.Errorf("%s not mounted yet", b.mnt)
		}
		return nil
	})
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
	if out, err := exec.Command("fusermount", "-u", "-z", b.mnt).CombinedOutput(); err != nil {
		b.t.Fatalf("fusermount -u -z: %v: %s", err, out)
	}
	b.proc.Wait(waitShort)
	if mounted(b.mnt) {
		b.t.Fatalf("%s still mounted after a lazy unmount", b.mnt)
	}
}

// mounted reports whether dir is a mount point, from /proc/self/mountinfo.
func mounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		// Field 5 is the mount point, with spaces escaped as \040; test
		// directories have none.
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
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

			restore := func() {
				if mounted(mnt) { // killed: the dead mount must go first
					if out, err := exec.Command("fusermount", "-u", "-z", mnt).CombinedOutput(); err != nil {
						t.Fatalf("fusermount -u -z: %v: %s", err, out)
					}
				}
				b.mount()
			}
			lose := func(when string) {
				var labels map[string]string
				if tt.kind != "" {
					labels = map[string]string{"kind": tt.kind}
				}
				errs := r.metric("pollreload_scan_errors_total", labels)
				tt.lose(b)
				r.waitMetric("pollreload_scan_errors_total", labels, errs+3)
				r.wantReloads(when, 0)
				if got := r.metric("pollreload_watched_files", nil); got != float64(len(files)) {
					t.Errorf("%s: pollreload_watched_files = %v; want %d (last good state kept)", when, got, len(files))
				}
			}

			lose("while the mount is gone")
			restore()
			r.waitScans("ok", quietScans)
			r.wantReloads("after the mount came back unchanged", 0)

			lose("while the mount is gone again")
			writeFiles(t, filepath.Join(backing, tt.sub), map[string]string{"app.conf": "listen 8080\n"})
			restore()
			r.waitReloads("after the mount came back changed", 1)
		})
	}
}
