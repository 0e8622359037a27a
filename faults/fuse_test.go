package faults

import (
	"errors"
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/pollreload/pollreload/faults/faultfs"
	"github.com/pollreload/pollreload/internal/testenv"
)

// fuseFiles is the tree every FUSE test starts from.
var fuseFiles = map[string]string{
	"app.conf":         "listen 80\n",
	"conf.d/tls.conf":  "ssl on\n",
	"conf.d/gzip.conf": "gzip on\n",
}

// mountFaultFS mirrors a fresh backing tree holding fuseFiles at a mount
// point in the test's temporary directory. It returns the filesystem, the
// backing directory (where tests change content behind the mount) and the
// mount point (what pollreload watches).
func mountFaultFS(t *testing.T) (fsys *faultfs.FS, backing, mnt string) {
	t.Helper()
	requireFUSE(t)
	backing, mnt = t.TempDir(), t.TempDir()
	writeFiles(t, backing, fuseFiles)
	fsys, err := faultfs.Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fsys.Unmount(); err != nil {
			t.Errorf("unmount faultfs: %v", err)
		}
	})
	return fsys, backing, mnt
}

// requireFUSE skips the test, or fails it under REQUIRE_TOOLS=1, unless
// FUSE mounts can work here.
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

// TestFUSEFaults injects each errno into each operation of a scan on one file
// and walks through the same story every time:
//
//  1. fault, with the file rewritten to identical content (so a content
//     read is due): scans go on, the error is counted by kind, no reload;
//  2. fault cleared: the content is unchanged, so nothing is delivered;
//  3. fault again, and the content changes behind it: still no reload, the
//     change is not visible yet;
//  4. fault cleared: the change is delivered exactly once.
func TestFUSEFaults(t *testing.T) {
	errnos := []struct {
		errno syscall.Errno
		kind  string // pollreload_scan_errors_total{kind}
	}{
		{syscall.EIO, "io"},
		{syscall.ESTALE, "stale"},
		{syscall.EACCES, "permission"},
		{syscall.ENOTCONN, "not_connected"},
	}
	ops := []faultfs.Op{faultfs.OpStat, faultfs.OpOpen, faultfs.OpRead}

	for _, e := range errnos {
		for _, op := range ops {
			t.Run(e.kind+"/"+string(op), func(t *testing.T) {
				t.Parallel()
				fsys, backing, mnt := mountFaultFS(t)
				r := startRig(t, mnt, nil)
				r.waitScans("ok", 2)
				errLabels := map[string]string{"kind": e.kind}

				// 1. Fault, with a content read due.
				t.Log("fault, content read due")
				errs := r.metric("pollreload_scan_errors_total", errLabels)
				fsys.Fail("app.conf", op, e.errno)
				writeFiles(t, backing, map[string]string{"app.conf": fuseFiles["app.conf"]})
				r.waitErrors(errLabels, errs+3, "during the fault")
				if fsys.Hits("app.conf", op) == 0 {
					t.Fatalf("pollreload never met the %s fault on app.conf", op)
				}
				if got := r.metric("pollreload_scans_total", map[string]string{"result": "partial"}) +
					r.metric("pollreload_scans_total", map[string]string{"result": "error"}); got < 3 {
					t.Errorf("scans with result partial or error during the fault: got %v; want >= 3", got)
				}
				if got := r.metric("pollreload_watched_files", nil); got != float64(len(fuseFiles)) {
					t.Errorf("pollreload_watched_files during the fault: got %v; want %d (last good state kept)", got, len(fuseFiles))
				}
				r.wantReloads("during the fault", 0)

				// 2. Recovery, content unchanged.
				t.Log("fault cleared, content unchanged")
				fsys.Clear()
				r.waitScans("ok", quietScans)
				r.wantReloads("after recovery with unchanged content", 0)
				if got := r.metric("pollreload_reload_pending", nil); got != 0 {
					t.Errorf("pollreload_reload_pending after recovery with unchanged content: got %v; want 0", got)
				}

				// 3. Fault, content changes behind it.
				t.Log("fault again, content changes behind it")
				errs = r.metric("pollreload_scan_errors_total", errLabels)
				fsys.Fail("app.conf", op, e.errno)
				writeFiles(t, backing, map[string]string{"app.conf": "listen 8080\n"})
				r.waitErrors(errLabels, errs+3, "during the fault hiding a change")
				r.wantReloads("during the fault hiding a change", 0)

				// 4. Recovery, content changed.
				t.Log("fault cleared, content changed")
				fsys.Clear()
				r.waitReloads("after recovery with changed content", 1)
			})
		}
	}
}

// TestFUSEHang hangs one request of a scan, the way a hard NFS mount does
// when its server is gone, and checks that the daemon stays observable:
// /metrics answers, /healthz turns unhealthy after HEALTH_MISSED_SCANS
// intervals without a finished scan and healthy again after recovery, and
// no reload happens unless the content changed.
func TestFUSEHang(t *testing.T) {
	tests := []struct {
		name    string
		op      faultfs.Op
		content string // written behind the hang; "" leaves it as is
		reloads int
	}{
		{name: "stat/unchanged", op: faultfs.OpStat, reloads: 0},
		{name: "read/unchanged", op: faultfs.OpRead, content: fuseFiles["app.conf"], reloads: 0},
		{name: "read/changed", op: faultfs.OpRead, content: "listen 8080\n", reloads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fsys, backing, mnt := mountFaultFS(t)
			r := startRig(t, mnt, map[string]string{"POLL_INTERVAL": "200ms"})
			// Cleanups run last-in first-out: release the hang before the
			// daemon is stopped, so its shutdown is not judged on a read
			// that no signal can interrupt.
			t.Cleanup(fsys.Clear)
			r.waitScans("ok", 2)
			r.waitHealthz(http.StatusOK)

			fsys.Hang("app.conf", tt.op)
			if tt.content != "" {
				writeFiles(t, backing, map[string]string{"app.conf": tt.content})
			}
			testenv.WaitFor(t, waitShort, func() error {
				if fsys.Hung() == 0 {
					return errors.New("no request has reached the hang yet")
				}
				return nil
			})
			missed := r.metric("pollreload_missed_scans_total", nil)
			r.waitHealthz(http.StatusServiceUnavailable)
			// The loop keeps its schedule: it counts the ticks it could
			// not scan on, and metrics are served all along.
			r.waitMetric("pollreload_missed_scans_total", nil, missed+3)
			r.wantReloads("while a request hangs", 0)

			fsys.Clear()
			r.waitHealthz(http.StatusOK)
			r.waitScans("ok", 2)
			r.waitReloads("after the hang ended", tt.reloads)
		})
	}
}
