package filetype

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestName names the type of real files of every kind this machine can make
// in a temp dir, and of /dev/null.
func TestName(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("file", link); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	for _, tc := range []struct{ path, want string }{
		{file, "regular file"},
		{dir, "directory"},
		{fifo, "FIFO (named pipe)"},
		{link, "symbolic link"},
		{sock, "socket"},
		{"/dev/null", "character device"},
	} {
		fi, err := os.Lstat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := Name(fi.Mode()); got != tc.want {
			t.Errorf("Name(%s, mode %v) = %q; want %q", tc.path, fi.Mode(), got, tc.want)
		}
	}
	if got := Name(os.ModeDevice); got != "block device" {
		t.Errorf("Name(ModeDevice) = %q; want block device", got)
	}
	if got := Name(os.ModeIrregular); got != "special file" {
		t.Errorf("Name(ModeIrregular) = %q; want special file", got)
	}
}
