package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

// TestLimits pushes a tree over MAX_FILES or MAX_FILE_SIZE under a running
// daemon: the scan is refused with a log line naming the limit and
// pollreload_scan_errors_total{kind="limit"}, nothing is reloaded on the
// incomplete view, and going back under the limit with the old content
// delivers nothing.
func TestLimits(t *testing.T) {
	base := map[string]string{"a.conf": "a\n", "b.conf": "b\n", "c.conf": "c\n"}
	tests := []struct {
		name    string
		env     map[string]string
		over    map[string]string // written to go over the limit
		under   func(t *testing.T, root string)
		logWord string // the variable the log line must name, with its value and fix
	}{
		{
			name:    "MAX_FILES",
			env:     map[string]string{"MAX_FILES": "3"},
			over:    map[string]string{"d.conf": "d\n"},
			under:   func(t *testing.T, root string) { remove(t, filepath.Join(root, "d.conf")) },
			logWord: `fix="MAX_FILES=3; raise it or narrow INCLUDE/EXCLUDE"`,
		},
		{
			name:    "MAX_FILE_SIZE",
			env:     map[string]string{"MAX_FILE_SIZE": "1KiB"},
			over:    map[string]string{"b.conf": strings.Repeat("b", 2048)},
			under:   func(t *testing.T, root string) { writeFiles(t, root, map[string]string{"b.conf": base["b.conf"]}) },
			logWord: `2048 bytes, over the size limit of 1024" fix="MAX_FILE_SIZE=1024; raise it or leave the file out with EXCLUDE"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeFiles(t, root, base)
			r := startRig(t, root, tt.env)
			r.waitScans("ok", 2)
			limit := map[string]string{"kind": "limit"}

			errs := r.metric("pollreload_scan_errors_total", limit)
			writeFiles(t, root, tt.over)
			r.waitErrors(limit, errs+3, "over the limit")
			r.wantReloads("over the limit", 0)
			if out := r.pr.Output(); !strings.Contains(out, tt.logWord) {
				t.Errorf("log over the limit does not name %s:\n%s", tt.logWord, tail(out, 20))
			}

			tt.under(t, root)
			r.waitScans("ok", quietScans)
			r.wantReloads("back under the limit with the old content", 0)
		})
	}
}

// TestDefaultMaxFiles fills a root with exactly 100,000 files, the default
// MAX_FILES: it is watched whole, a change in it reloads once, and one file
// more is refused with the limit error rather than growing memory. The tree
// is on tmpfs when there is one (see scratchDir).
func TestDefaultMaxFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 files: skipped in -short mode")
	}
	const n = 100000
	root := scratchDir(t)
	makeTree(t, root, n)
	r := startRig(t, root, map[string]string{"POLL_INTERVAL": "1s"})
	if got := r.metric("pollreload_watched_files", nil); got != n {
		t.Fatalf("pollreload_watched_files = %v; want %d", got, n)
	}
	logMemory(t, r, "100,000 files")
	// The daemon stretches its interval to several scan durations; give a
	// change that long and then some.
	patience := 20*r.scanDuration() + waitShort

	writeFiles(t, root, map[string]string{"d000/f00000.conf": "changed\n"})
	r.waitReloadsWithin(patience, 1, "after one of 100,000 files changed", 1)

	limit := map[string]string{"kind": "limit"}
	errs := r.metric("pollreload_scan_errors_total", limit)
	writeFiles(t, root, map[string]string{"one-too-many.conf": "x\n"})
	testenv.WaitFor(t, patience, func() error {
		if got := r.metric("pollreload_scan_errors_total", limit); got < errs+1 {
			return fmt.Errorf("pollreload_scan_errors_total{kind=limit} = %v; want >= %v", got, errs+1)
		}
		return nil
	})
	r.wantReloads("with 100,001 files", 1)
	if out := r.pr.Output(); !strings.Contains(out, "MAX_FILES") {
		t.Errorf("log with 100,001 files does not name MAX_FILES:\n%s", tail(out, 20))
	}
	logMemory(t, r, "100,001 files")
}

// makeTree writes n small files, 1,000 to a directory.
func makeTree(t *testing.T, root string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		name := filepath.Join(dir, fmt.Sprintf("f%05d.conf", i))
		if err := os.WriteFile(name, []byte(fmt.Sprintf("key%d = %d\n", i, i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// logMemory logs the daemon's peak and current resident memory and returns
// the peak in KiB. bench/compare.sh reports the same figures.
func logMemory(t *testing.T, r *rig, what string) int64 {
	t.Helper()
	hwm, err1 := statusKB(r.pr.PID(), "VmHWM")
	rss, err2 := statusKB(r.pr.PID(), "VmRSS")
	if err1 != nil || err2 != nil {
		t.Fatalf("read memory: %v, %v", err1, err2)
	}
	t.Logf("pollreload with %s: VmHWM %d MB, VmRSS %d MB (binary %s)", what, hwm/1024, rss/1024, binaryKind())
	return hwm
}

// binaryKind says which pollreload build the test runs.
func binaryKind() string {
	if bin := os.Getenv(testenv.BinaryEnv); bin != "" {
		return bin
	}
	return "built with -race"
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
