package hasher

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestErrorKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, "permission"},
		{fmt.Errorf("scan: %w", &fs.PathError{Op: "open", Path: "/x", Err: syscall.EPERM}), "permission"},
		{&fs.PathError{Op: "stat", Path: "/x", Err: syscall.ENOENT}, "not_found"},
		{syscall.ENOTDIR, "not_found"},
		{syscall.ESTALE, "stale"},
		{fmt.Errorf("scan: %w", syscall.ENOTCONN), "not_connected"},
		{syscall.EIO, "io"},
		{fmt.Errorf("scan: %w", ErrTooManyFiles), "limit"},
		{fmt.Errorf("9 bytes: %w", errFileTooLarge), "limit"},
		{syscall.ELOOP, "other"},
		{errors.New("something"), "other"},
		{fs.ErrNotExist, "not_found"},
	}
	for _, tt := range tests {
		name := "nil"
		if tt.err != nil {
			name = tt.err.Error()
		}
		t.Run(name, func(t *testing.T) {
			if got := ErrorKind(tt.err); got != tt.want {
				t.Errorf("ErrorKind(%v) = %q; want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestScanRootErrors(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, root, kind string
	}{
		{"missing", filepath.Join(dir, "missing"), "not_found"},
		{"fifo", fifo, "other"},
		{"below a file", filepath.Join(fifo, "x"), "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := New(Options{}).Scan(context.Background(), tt.root)
			if err == nil {
				t.Fatalf("Scan(%s) = %v, nil; want an error", tt.root, snap)
			}
			if got := ErrorKind(err); got != tt.kind {
				t.Errorf("ErrorKind(%v) = %q; want %q", err, got, tt.kind)
			}
		})
	}
}

// TestScanFileVanishesMidWalk removes a file after its directory was listed
// and before it is opened: that is a read error, not a deletion, until the
// next scan no longer lists it.
func TestScanFileVanishesMidWalk(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a": "a", "b": "b", "sub/c": "c"})
	h := New(Options{})
	first := mustScan(t, h, dir)
	h.afterList = func(dirRel string) {
		if dirRel == "" {
			must(t, os.Remove(filepath.Join(dir, "b")))
			must(t, os.RemoveAll(filepath.Join(dir, "sub")))
		}
	}
	snap := mustScan(t, h, dir)
	if got, want := errorKinds(snap), []string{"b=not_found", "sub=not_found"}; !slices.Equal(got, want) {
		t.Errorf("errors = %q; want %q", got, want)
	}
	if snap.Digest != first.Digest || !slices.Equal(paths(snap), paths(first)) {
		t.Errorf("files = %q, digest %x; want the last good %q, %x", paths(snap), snap.Digest, paths(first), first.Digest)
	}
	h.afterList = nil
	gone := mustScan(t, h, dir)
	if _, _, removed := Diff(first, gone); !slices.Equal(removed, []string{"b", "sub/c"}) {
		t.Errorf("removed = %q; want [b sub/c]", removed)
	}
}

// scanReport is what the helper scanner prints per scan.
type scanReport struct {
	Err     string            `json:"err,omitempty"`
	ErrKind string            `json:"err_kind,omitempty"`
	Digest  uint64            `json:"digest"`
	Files   map[string]uint64 `json:"files"`
	Errors  []string          `json:"errors"`
}

// TestHelperScanner is not a test: it is the child process of
// TestScanPermissionErrors. It scans HASHER_HELPER_ROOT once per line read
// from stdin and prints a scanReport per scan, as an unprivileged user.
func TestHelperScanner(t *testing.T) {
	root := os.Getenv("HASHER_HELPER_ROOT")
	if root == "" {
		t.Skip("helper process only")
	}
	h := New(Options{})
	in := bufio.NewScanner(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var r scanReport
		snap, err := h.Scan(context.Background(), root)
		if err != nil {
			r.Err, r.ErrKind = err.Error(), ErrorKind(err)
		} else {
			r.Digest, r.Files, r.Errors = snap.Digest, map[string]uint64{}, errorKinds(snap)
			for p, f := range snap.Files {
				r.Files[p] = f.Digest
			}
		}
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScanPermissionErrors makes files, a directory and the root unreadable
// for real. Root ignores permissions, so as root the scans run in a child
// process (this test binary again) that runs as uid 65534.
func TestScanPermissionErrors(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"open": "o", "locked": "l", "dir/inner": "i"})
	scan := startHelperScanner(t, root)

	first := scan()
	if first.Err != "" || len(first.Files) != 3 || len(first.Errors) != 0 {
		t.Fatalf("readable tree: %+v", first)
	}
	must(t, os.Chmod(filepath.Join(root, "locked"), 0))
	must(t, os.Chmod(filepath.Join(root, "dir"), 0))
	locked := scan()
	if got, want := locked.Errors, []string{"dir=permission", "locked=permission"}; !slices.Equal(got, want) {
		t.Errorf("errors = %q; want %q", got, want)
	}
	if locked.Digest != first.Digest || len(locked.Files) != 3 {
		t.Errorf("unreadable files changed the snapshot: %+v; want the last good %+v", locked, first)
	}

	must(t, os.Chmod(root, 0))
	t.Cleanup(func() { os.Chmod(root, 0o755) })
	gone := scan()
	if gone.Err == "" || gone.ErrKind != "permission" {
		t.Errorf("unreadable root: err %q kind %q; want a permission error", gone.Err, gone.ErrKind)
	}
}

// startHelperScanner starts TestHelperScanner on root and returns a func that
// asks it for one scan.
func startHelperScanner(t *testing.T, root string) func() scanReport {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperScanner$")
	cmd.Env = append(os.Environ(), "HASHER_HELPER_ROOT="+root)
	cmd.Stderr = os.Stderr
	if os.Geteuid() == 0 {
		// The build cache is private to root: copy the binary where
		// nobody can execute it, and let nobody reach the tree.
		bin := filepath.Join(t.TempDir(), "hasher.test")
		copyFile(t, exe, bin)
		for _, d := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin)), root, filepath.Dir(root)} {
			must(t, os.Chmod(d, 0o755))
		}
		cmd.Path, cmd.Args[0] = bin, bin
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	dec := json.NewDecoder(stdout)
	return func() scanReport {
		t.Helper()
		if _, err := io.WriteString(stdin, "scan\n"); err != nil {
			t.Fatal(err)
		}
		var r scanReport
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("helper scanner: %v", err)
		}
		return r
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}
