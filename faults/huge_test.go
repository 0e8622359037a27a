package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hugeSize is the size of the sparse file: larger than any buffer a daemon
// could reasonably hold, and it costs no disk.
const hugeSize = 4 << 30

// makeSparse creates a sparse file of size bytes (all zeros, no blocks).
func makeSparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// TestHugeFile hashes a 4 GiB sparse file: the daemon streams it (peak
// memory far below the file size), counts every byte, and a one-byte change
// in the middle reloads once.
func TestHugeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("4 GiB file: skipped in -short mode")
	}
	root := t.TempDir()
	path := filepath.Join(root, "disk.img")
	makeSparse(t, path, hugeSize)
	r := startRig(t, root, map[string]string{"POLL_INTERVAL": "1s"})
	r.waitScans("ok", 1)
	if got := r.metric("pollreload_watched_bytes", nil); got != hugeSize {
		t.Errorf("pollreload_watched_bytes = %v; want %d", got, int64(hugeSize))
	}
	if got := r.metric("pollreload_bytes_hashed_total", nil); got < hugeSize {
		t.Errorf("pollreload_bytes_hashed_total = %v; want >= %d", got, int64(hugeSize))
	}
	// A generous bound against reading the file into memory: even a -race
	// build streaming in small buffers stays far below it.
	hwm, err := statusKB(r.pr.PID(), "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	if hwm > 512<<10 {
		t.Errorf("VmHWM after hashing a 4 GiB file: %d MB; want < 512 MB (memory must not grow with file size)", hwm/1024)
	}
	logMemory(t, r)

	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{1}, hugeSize/2); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r.waitReloads("after one byte of 4 GiB changed", 1)
}

// TestHugeFileOverMaxFileSize grows a watched file to 4 GiB with
// MAX_FILE_SIZE=1GiB: the file is refused with the limit error, nothing is
// read or reloaded, and memory stays flat.
func TestHugeFileOverMaxFileSize(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "disk.img")
	writeFiles(t, root, map[string]string{"disk.img": "small\n", "app.conf": "listen 80\n"})
	r := startRig(t, root, map[string]string{"MAX_FILE_SIZE": "1GiB"})
	r.waitScans("ok", 2)

	hashed := r.metric("pollreload_bytes_hashed_total", nil)
	limit := map[string]string{"kind": "limit"}
	errs := r.metric("pollreload_scan_errors_total", limit)
	makeSparse(t, path, hugeSize)
	r.waitErrors(limit, errs+3, "with a file over MAX_FILE_SIZE")
	r.wantReloads("with a file over MAX_FILE_SIZE", 0)
	if got := r.metric("pollreload_bytes_hashed_total", nil) - hashed; got >= 1<<30 {
		t.Errorf("bytes hashed after the file outgrew MAX_FILE_SIZE: %v; want < 1 GiB (the file must not be read)", got)
	}
	if out := r.pr.Output(); !strings.Contains(out, "MAX_FILE_SIZE") {
		t.Errorf("log does not name MAX_FILE_SIZE:\n%s", tail(out, 20))
	}
	logMemory(t, r)
}
