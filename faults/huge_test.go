package faults

import (
	"fmt"
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

// TestHugeFile hashes a 4 GiB sparse file with MAX_FILE_SIZE and
// MAX_TOTAL_SIZE lifted (their defaults refuse it): the daemon streams it
// (peak memory far below the file size), counts every byte, and a one-byte
// change in the middle reloads once. The file is on tmpfs when there is one, where
// reading holes is cheap (see scratchDir).
func TestHugeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("4 GiB file: skipped in -short mode")
	}
	root := scratchDir(t)
	path := filepath.Join(root, "disk.img")
	makeSparse(t, path, hugeSize)
	r := startRig(t, root, map[string]string{"POLL_INTERVAL": "1s", "MAX_FILE_SIZE": "0", "MAX_TOTAL_SIZE": "0"})
	if got := r.metric("pollreload_watched_bytes", nil); got != hugeSize {
		t.Errorf("pollreload_watched_bytes = %v; want %d", got, int64(hugeSize))
	}
	if got := r.metric("pollreload_bytes_hashed_total", nil); got < hugeSize {
		t.Errorf("pollreload_bytes_hashed_total = %v; want >= %d", got, int64(hugeSize))
	}
	// A generous bound, even for a -race build (about 50 MB here): one that
	// read the file into memory would need 4 GiB.
	if hwm := logMemory(t, r, "one 4 GiB file"); hwm > 100<<10 {
		t.Errorf("VmHWM after hashing a 4 GiB file: %d MB; want < 100 MB (memory must not grow with file size)", hwm/1024)
	}
	patience := 20*r.scanDuration() + waitShort

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
	r.waitReloadsWithin(patience, 1, "after one byte of 4 GiB changed", 1)
	logMemory(t, r, "one 4 GiB file, hashed twice")
}

// TestHugeFileOverMaxFileSize grows a watched file to 4 GiB with
// MAX_FILE_SIZE=1GiB: the file is refused with the limit error, nothing is
// read or reloaded, and memory stays flat.
func TestHugeFileOverMaxFileSize(t *testing.T) {
	root := scratchDir(t)
	path := filepath.Join(root, "disk.img")
	writeFiles(t, root, map[string]string{"disk.img": "small\n", "app.conf": "listen 80\n"})
	r := startRig(t, root, map[string]string{"MAX_FILE_SIZE": "1GiB", "MAX_TOTAL_SIZE": "0"})
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
	// The hasher's own line, with the fix pollreload's log handler adds.
	want := fmt.Sprintf(`%d bytes, over the size limit of %d" fix="MAX_FILE_SIZE=%[2]d; raise it or leave the file out with EXCLUDE"`, int64(hugeSize), int64(1<<30))
	if out := r.pr.Output(); !strings.Contains(out, want) {
		t.Errorf("log does not say %q:\n%s", want, tail(out, 20))
	}
	logMemory(t, r, "a 4 GiB file over MAX_FILE_SIZE")
}
