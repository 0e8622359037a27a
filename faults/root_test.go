package faults

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

// TestRootRemovedAndRecreated removes the watched root under a running
// daemon and brings it back, first with the same content, then changed.
// Removal and recreation are atomic renames, so the daemon sees exactly
// "root there" or "root gone", never a half-deleted tree (which would be a
// real change).
func TestRootRemovedAndRecreated(t *testing.T) {
	files := map[string]string{"app.conf": "listen 80\n", "conf.d/tls.conf": "ssl on\n"}
	changed := map[string]string{"app.conf": "listen 8080\n", "conf.d/tls.conf": "ssl on\n"}

	tests := []struct {
		name  string
		write func(t *testing.T, dir string, files map[string]string)
	}{
		{name: "plain tree", write: writeFiles},
		{name: "kubelet volume", write: func(t *testing.T, dir string, files map[string]string) {
			if _, err := testenv.NewKubeletWriter(dir).Write(files); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			root := filepath.Join(parent, "config")
			// recreate builds the tree beside the root and renames it in.
			recreate := func(files map[string]string) {
				next := filepath.Join(parent, "config.next")
				if err := os.Mkdir(next, 0o755); err != nil {
					t.Fatal(err)
				}
				tt.write(t, next, files)
				if err := os.Rename(next, root); err != nil {
					t.Fatal(err)
				}
			}
			recreate(files)
			r := startRig(t, root, nil)
			r.waitScans("ok", 2)

			gone := func(when string) {
				errs := r.metric("pollreload_scan_errors_total", nil)
				graveyard := filepath.Join(parent, "config.gone")
				if err := os.Rename(root, graveyard); err != nil {
					t.Fatal(err)
				}
				if err := os.RemoveAll(graveyard); err != nil {
					t.Fatal(err)
				}
				r.waitErrors(nil, errs+3, when)
				r.wantReloads(when, 0)
				if got := r.metric("pollreload_watched_files", nil); got != float64(len(files)) {
					t.Errorf("%s: pollreload_watched_files = %v; want %d (last good state kept)", when, got, len(files))
				}
			}

			gone("while the root is gone")
			recreate(files)
			r.waitScans("ok", quietScans)
			r.wantReloads("after the root came back unchanged", 0)

			gone("while the root is gone again")
			recreate(changed)
			r.waitReloads("after the root came back changed", 1)
		})
	}
}
