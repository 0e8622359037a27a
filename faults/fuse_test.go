package faults

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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

// faultTarget is where TestFUSEFaults injects a fault, and how it touches
// the backing tree behind the fault.
type faultTarget struct {
	op   faultfs.Op
	path string // relative to the mount root
	// same rewrites what the fault hides without changing its content, so
	// that pollreload has a reason to look again (a new mtime or inode).
	same func(t *testing.T, backing string)
	// change changes the content the fault hides.
	change func(t *testing.T, backing string)
}

// faultTargets covers every request a scan makes of one file, directory or
// link.
func faultTargets() []faultTarget {
	// Both replace by rename from outside the watched tree (the backing
	// directory's parent, the same filesystem), so a scan sees the old entry
	// or the new one and nothing between: what it sees while the fault is on
	// is what the fault lets through. A remove-then-create (or a truncating
	// write) has a moment with no entry (or an empty file), which a scan on a
	// loaded machine catches as a real change the fault then keeps it from
	// undoing.
	rewrite := func(p, content string) func(t *testing.T, backing string) {
		return func(t *testing.T, backing string) {
			full := filepath.Join(backing, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			staged := filepath.Join(filepath.Dir(backing), "staged-file")
			if err := os.WriteFile(staged, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(staged, full); err != nil {
				t.Fatal(err)
			}
		}
	}
	relink := func(target string) func(t *testing.T, backing string) {
		return func(t *testing.T, backing string) {
			link := filepath.Join(backing, "current.conf")
			staged := filepath.Join(filepath.Dir(backing), "staged-link")
			if err := os.Symlink(target, staged); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(staged, link); err != nil {
				t.Fatal(err)
			}
		}
	}
	file := func(op faultfs.Op) faultTarget {
		return faultTarget{op: op, path: "app.conf",
			same: rewrite("app.conf", fuseFiles["app.conf"]), change: rewrite("app.conf", "listen 8080\n")}
	}
	return []faultTarget{
		file(faultfs.OpStat),
		file(faultfs.OpOpen),
		file(faultfs.OpRead),
		// A failed listing hides only what a listing shows: a file added to
		// the directory. An in-place rewrite of a file already known stays
		// visible to stat and open (and whether the kernel sends a READDIR
		// at all depends on its FUSE directory cache), so reloading on one
		// is right, and it is not the change this fault can hide.
		{op: faultfs.OpReaddir, path: "conf.d",
			same: rewrite("conf.d/tls.conf", fuseFiles["conf.d/tls.conf"]), change: rewrite("conf.d/added.conf", "ssl off\n")},
		{op: faultfs.OpReadlink, path: "current.conf",
			same: relink("app.conf"), change: relink("conf.d/gzip.conf")},
	}
}

// TestFUSEFaults injects each errno into each request a scan makes (stat,
// open and read of a file, listing a directory, reading a symlink) and
// walks through the same story every time:
//
//  1. fault, with what it hides rewritten to identical content (so a fresh
//     look is due): scans go on, the error is counted by kind, no reload,
//     the last good state is kept;
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
	for _, e := range errnos {
		for _, ft := range faultTargets() {
			t.Run(e.kind+"/"+string(ft.op), func(t *testing.T) {
				t.Parallel()
				fsys, backing, mnt := mountFaultFS(t)
				if err := os.Symlink("app.conf", filepath.Join(backing, "current.conf")); err != nil {
					t.Fatal(err)
				}
				const files = 4 // fuseFiles and current.conf
				r := startRig(t, mnt, nil)
				r.waitScans("ok", 2)
				if got := r.metric("pollreload_watched_files", nil); got != files {
					t.Fatalf("pollreload_watched_files = %v; want %d", got, files)
				}
				errLabels := map[string]string{"kind": e.kind}

				// 1. Fault, with a fresh look due.
				t.Log("fault, a fresh look due")
				errs := r.metric("pollreload_scan_errors_total", errLabels)
				failed := r.failedScans()
				fsys.Fail(ft.path, ft.op, e.errno)
				// A scan in flight when the fault went on may have passed the
				// faulted request already: write only once every scan that
				// started before the fault has ended.
				r.waitScans("", 2)
				ft.same(t, backing)
				r.waitErrors(errLabels, errs+3, "during the fault")
				if fsys.Hits(ft.path, ft.op) == 0 {
					t.Fatalf("pollreload never met the %s fault on %s", ft.op, ft.path)
				}
				// The loop keeps its schedule through the fault.
				testenv.WaitFor(t, waitShort, func() error {
					if got := r.failedScans(); got < failed+3 {
						return fmt.Errorf("scans with result partial or error during the fault: %v; want >= %v", got, failed+3)
					}
					return nil
				})
				if got := r.metric("pollreload_watched_files", nil); got != files {
					t.Errorf("pollreload_watched_files during the fault: got %v; want %d (last good state kept)", got, files)
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
				fsys.Fail(ft.path, ft.op, e.errno)
				r.waitScans("", 2)
				ft.change(t, backing)
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

// TestFUSEHangShutdown stops the daemon with SIGTERM while one of its reads
// hangs. The daemon must shut down at once (its HTTP server closes, it stops
// waiting for the scan) and exit with status 0. The process itself can only
// be reaped once the hung request is answered: Linux waits uninterruptibly
// for a FUSE request that the server has already received, even on SIGKILL,
// so the test answers it (Clear) after checking the shutdown.
func TestFUSEHangShutdown(t *testing.T) {
	fsys, _, mnt := mountFaultFS(t)
	r := startRig(t, mnt, nil)
	t.Cleanup(fsys.Clear)
	r.waitScans("ok", 1)

	fsys.Hang("app.conf", faultfs.OpStat)
	testenv.WaitFor(t, waitShort, func() error {
		if fsys.Hung() == 0 {
			return errors.New("no request has reached the hang yet")
		}
		return nil
	})
	if err := r.pr.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, waitShort, func() error {
		if _, err := r.healthz(); err == nil {
			return errors.New("the metrics server still answers after SIGTERM")
		}
		return nil
	})
	if fsys.Hung() == 0 {
		t.Fatal("the hang ended before the daemon shut down; the test proved nothing")
	}
	fsys.Clear()
	if err := r.pr.Wait(waitShort); err != nil {
		t.Fatalf("pollreload after SIGTERM with a hung read: %v; want exit status 0", err)
	}
}

// TestFUSEKubeletFaults puts a kubelet-style volume (a `..data` link swapped
// atomically to a new timestamped directory) on the FUSE mount and fails
// the requests that find the current version: reading or stat-ing `..data`.
// A swap to identical content behind the fault delivers nothing; a swap to
// new content delivers once, after the fault clears.
func TestFUSEKubeletFaults(t *testing.T) {
	tests := []struct {
		op    faultfs.Op
		errno syscall.Errno
		kind  string
	}{
		{faultfs.OpReadlink, syscall.EIO, "io"},
		{faultfs.OpStat, syscall.ESTALE, "stale"},
	}
	files := map[string]string{"app.conf": "listen 80\n", "tls/cert.pem": "cert v1\n"}
	changed := map[string]string{"app.conf": "listen 80\n", "tls/cert.pem": "cert v2\n"}
	for _, tt := range tests {
		t.Run(string(tt.op)+"/"+tt.kind, func(t *testing.T) {
			t.Parallel()
			requireFUSE(t)
			backing, mnt := t.TempDir(), t.TempDir()
			vol := testenv.NewKubeletWriter(backing)
			swap := func(files map[string]string) {
				if _, err := vol.Write(files); err != nil {
					t.Fatal(err)
				}
			}
			swap(files)
			fsys, err := faultfs.Mount(backing, mnt)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := fsys.Unmount(); err != nil {
					t.Errorf("unmount faultfs: %v", err)
				}
			})
			r := startRig(t, mnt, nil)
			r.waitScans("ok", 2)
			labels := map[string]string{"kind": tt.kind}

			errs := r.metric("pollreload_scan_errors_total", labels)
			fsys.Fail(testenv.DataLink, tt.op, tt.errno)
			swap(files)
			r.waitErrors(labels, errs+3, "during the fault")
			if fsys.Hits(testenv.DataLink, tt.op) == 0 {
				t.Fatalf("pollreload never met the %s fault on %s", tt.op, testenv.DataLink)
			}
			r.wantReloads("during the fault, swapped to the same content", 0)

			fsys.Clear()
			r.waitScans("ok", quietScans)
			r.wantReloads("after recovery with unchanged content", 0)

			errs = r.metric("pollreload_scan_errors_total", labels)
			fsys.Fail(testenv.DataLink, tt.op, tt.errno)
			swap(changed)
			r.waitErrors(labels, errs+3, "during the fault hiding a swap")
			r.wantReloads("during the fault hiding a swap", 0)

			fsys.Clear()
			r.waitReloads("after recovery with a new version", 1)
		})
	}
}
