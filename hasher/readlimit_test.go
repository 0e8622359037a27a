package hasher

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// TestMaxFileSizeBoundsBytesRead reads kernel files whose stat size is 0:
// /proc/self/maps (a few KiB) and /proc/self/pagemap (8 bytes per page of
// the address space: hundreds of GiB that a read never gets to the end of).
// Scan refuses a root on proc outright; the read bound is what stops such a
// file anywhere the refusal cannot see it (a FUSE file that reports size 0),
// so it is tested on the open file: MAX_FILE_SIZE must stop the read just
// past the limit and report the file's limit error, as it does for a file
// whose stat size is too large.
func TestMaxFileSizeBoundsBytesRead(t *testing.T) {
	tests := []struct {
		root string
		max  int64
	}{
		{"/proc/self/maps", 100},
		{"/proc/self/pagemap", 1 << 20},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.root), func(t *testing.T) {
			var st unix.Stat_t
			if err := unix.Stat(tt.root, &st); err != nil || st.Size != 0 {
				t.Skipf("stat %s: size %d, %v; want a file that reports size 0", tt.root, st.Size, err)
			}
			if _, err := New(Options{MaxFileSize: tt.max}).Scan(context.Background(), tt.root); err == nil || !strings.Contains(err.Error(), "on proc, a kernel pseudo-filesystem") {
				t.Errorf("Scan(%s) = %v; want the pseudo-filesystem refusal", tt.root, err)
			}
			f, err := os.Open(tt.root)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h := New(Options{MaxFileSize: tt.max})
			rs := h.state(tt.root)
			rs.buf, rs.digest = make([]byte, readBufferSize), xxhash.New()
			s := &scan{h: h, rs: rs, ctx: context.Background(), root: tt.root, start: time.Now().UnixNano()}
			if err := s.hashOpen(int(f.Fd()), filepath.Base(tt.root), &st); err != nil {
				t.Fatalf("hashOpen(%s): %v", tt.root, err)
			}
			if len(s.errors) != 1 || s.errors[0].Kind != "limit" || !errors.Is(s.errors[0].Err, errFileTooLarge) {
				t.Fatalf("hashOpen(%s) errors = %+v; want one of kind limit", tt.root, s.errors)
			}
			if len(s.files) != 0 {
				t.Errorf("hashOpen(%s) kept %d files; want none", tt.root, len(s.files))
			}
			// One page of overshoot at most: pagemap reads come in pages.
			if s.bytesRead <= tt.max || s.bytesRead > tt.max+4096 {
				t.Errorf("hashOpen(%s) read %d bytes; want just past MAX_FILE_SIZE=%d", tt.root, s.bytesRead, tt.max)
			}
			t.Logf("%s (stat size 0), MAX_FILE_SIZE=%d: read %d bytes; error %q", tt.root, tt.max, s.bytesRead, s.errors[0].Err)
		})
	}
}

// TestMaxFileSizeFileGrowsDuringRead stats a real file, lets it grow past
// the limit, and only then hashes it through the stat taken before, as a
// file that grows between the fstat and the read. Both read paths are
// covered: the plain loop and, from 8 MiB, the pipelined one.
func TestMaxFileSizeFileGrowsDuringRead(t *testing.T) {
	tests := []struct {
		name         string
		before, grow int
		max          int64
	}{
		{"small file", 1 << 10, 10 << 10, 4 << 10},
		{"pipelined file", pipelineMin, 4 << 20, pipelineMin + 1<<20},
		{"pipelined, ends within the last page", pipelineMin, 1<<20 + 10, pipelineMin + 1<<20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			writeFile(t, path, strings.Repeat("a", tt.before))
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var st unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			if st.Size > tt.max {
				t.Fatalf("setup: %d bytes already over %d", st.Size, tt.max)
			}
			a, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.WriteString(strings.Repeat("b", tt.grow)); err != nil {
				t.Fatal(err)
			}
			a.Close()

			h := New(Options{MaxFileSize: tt.max})
			rs := h.state(path)
			rs.buf, rs.digest = make([]byte, readBufferSize), xxhash.New()
			s := &scan{h: h, rs: rs, ctx: context.Background(), root: path, start: time.Now().UnixNano()}
			if err := s.hashOpen(int(f.Fd()), "f", &st); err != nil {
				t.Fatalf("hashOpen: %v", err)
			}
			if len(s.errors) != 1 || s.errors[0].Kind != "limit" {
				t.Fatalf("errors = %+v; want one of kind limit", s.errors)
			}
			if s.bytesRead <= tt.max || s.bytesRead > tt.max+4096 {
				t.Errorf("read %d bytes of %d; want just past MAX_FILE_SIZE=%d", s.bytesRead, tt.before+tt.grow, tt.max)
			}
			t.Logf("stat said %d, file has %d, MAX_FILE_SIZE=%d: read %d; %v", st.Size, tt.before+tt.grow, tt.max, s.bytesRead, s.errors[0].Err)
		})
	}
}

// TestScanNeverBlocksOnAFIFORoot points Scan at a FIFO with no writer, and
// at a symlink to one: opening it for reading would block forever.
func TestScanNeverBlocksOnAFIFORoot(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{fifo, link} {
		errc := make(chan error, 1)
		go func() {
			_, err := New(Options{}).Scan(context.Background(), root)
			errc <- err
		}()
		select {
		case err := <-errc:
			if err == nil || !strings.Contains(err.Error(), "not a directory or regular file") {
				t.Errorf("Scan(%s) = %v; want an error saying it is not a directory or regular file", root, err)
			}
			t.Logf("Scan(%s): %v", root, err)
		case <-time.After(20 * time.Second):
			t.Fatalf("Scan(%s) still blocked after 20s", root)
		}
	}
}
