package hasher

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestBrokenDataLinkSaysWhat is issue 21 #20: a kubelet volume whose ..data
// link is dangling, names another link (a loop), or names a file, and a
// root that is a FIFO: the scan error says what ..data is and what is wrong
// with it, and names file types in words. Before, the errors were only "no
// such file or directory", "not a directory" and "(p---------)". The kind
// stays the errno's, for the metric.
func TestBrokenDataLinkSaysWhat(t *testing.T) {
	const what = "..data (kubelet's link to the current version of the volume) names "
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
		kind  string
	}{
		{"dangling", func(t *testing.T, dir string) {
			mkDataTestLink(t, "..2026_12_04_10_00_00.1", filepath.Join(dir, "..data"))
		}, what + "..2026_12_04_10_00_00.1, which does not exist: a dangling link", "not_found"},
		{"loop", func(t *testing.T, dir string) {
			mkDataTestLink(t, "..b", filepath.Join(dir, "..data"))
			mkDataTestLink(t, "..data", filepath.Join(dir, "..b"))
		}, what + "..b, which is another symbolic link, not a directory", "not_found"},
		{"file", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "..v"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			mkDataTestLink(t, "..v", filepath.Join(dir, "..data"))
		}, what + "..v, which is a regular file, not a directory", "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			_, err := New(Options{}).Scan(t.Context(), dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Scan = %v; want an error with %q", err, tt.want)
			}
			if got := ErrorKind(err); got != tt.kind {
				t.Errorf("ErrorKind = %q; want %q", got, tt.kind)
			}
		})
	}
	t.Run("FIFO root", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "fifo")
		if err := syscall.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := New(Options{}).Scan(t.Context(), fifo)
		if err == nil || !strings.Contains(err.Error(), "is a FIFO (named pipe), not a directory or regular file") {
			t.Errorf("Scan(FIFO) = %v; want the type in words", err)
		}
	})
	t.Run("unreadable version is not a link problem", func(t *testing.T) {
		err := dataLinkErr(t.TempDir(), "..v", syscall.EACCES)
		if !errors.Is(err, syscall.EACCES) || strings.Contains(err.Error(), "..data") {
			t.Errorf("dataLinkErr(EACCES) = %v; want EACCES as it is", err)
		}
	})
}

func mkDataTestLink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
