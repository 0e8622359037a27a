package signaler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPIDFileRefusesSpecialFiles puts a FIFO, a device, a directory and a
// socket where the PID file should be. Each is refused with an error naming
// the type, at once: a FIFO with no writer used to block the reload (and
// with it the poll loop) forever.
func TestPIDFileRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.pid")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.pid")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{fifo, "is a FIFO (named pipe), not a regular file"},
		{"/dev/null", "is a character device, not a regular file"},
		{"/dev/zero", "is a character device, not a regular file"},
		{dir, "is a directory, not a regular file"},
		{sock, "is a socket, not a regular file"},
	}
	for _, tt := range tests {
		p, err := NewProcess(ProcessOptions{PIDFile: tt.path})
		if err != nil {
			t.Fatal(err)
		}
		// Bounded, so that a regression fails instead of hanging.
		errc := make(chan error, 1)
		go func() {
			_, err := p.Reload(context.Background(), time.Now())
			errc <- err
		}()
		select {
		case err = <-errc:
		case <-time.After(waitFor):
			t.Fatalf("PID_FILE=%s: Reload still blocked after %s", tt.path, waitFor)
		}
		var pf *PIDFileError
		if !errors.As(err, &pf) || pf.Path != tt.path || errors.Is(err, ErrNoTarget) || !strings.HasPrefix(pf.Err.Error(), tt.want) {
			t.Errorf("PID_FILE=%s: Reload = %v; want a PIDFileError saying it %s", tt.path, err, tt.want)
		}
		t.Logf("PID_FILE=%s: %v", tt.path, err)
	}
}

// TestPIDFileFirstLine reads PID files as the apps that write them do: a
// Postgres postmaster.pid holds the PID on its first line and more lines
// after it; a huge file is read only as far as the first line can be.
func TestPIDFileFirstLine(t *testing.T) {
	dir := t.TempDir()
	bin := linkAs(t, dir, uniqueName(t, "pgpid"), testBinary(t))
	h := startHelper(t, helperOpts{path: bin, mode: "catch"})
	waitLine(t, h.out, "ready", 1)
	pidFile := filepath.Join(dir, "postmaster.pid")
	// The layout PostgreSQL 15 writes (see its miscadmin.h LOCK_FILE_LINE_*).
	postmaster := fmt.Sprintf("%d\n/var/lib/postgresql/data\n1733050000\n5432\n/var/run/postgresql\n*\n  5432001         0\nready   \n", h.pid())
	if err := os.WriteFile(pidFile, []byte(postmaster), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := NewProcess(ProcessOptions{PIDFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Reload(t.Context(), time.Now())
	if err != nil || !slices.Equal(pids(out.Signalled), []int{h.pid()}) {
		t.Fatalf("Reload with postmaster.pid = %+v, %v; want pid %d signalled", out, err, h.pid())
	}
	waitLine(t, h.out, "SIGHUP", 1)

	// A file with no newline in its first 4 KiB is not read to its end.
	big := filepath.Join(dir, "big.pid")
	if err := os.WriteFile(big, []byte(strings.Repeat("1", 8<<20)), 0o600); err != nil {
		t.Fatal(err)
	}
	pb, err := NewProcess(ProcessOptions{PIDFile: big})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pb.Reload(t.Context(), time.Now())
	if err == nil || !strings.Contains(err.Error(), `first line "1111111111111111111111111111111111111111..." is not a PID`) {
		t.Errorf("Reload with a 8 MiB PID file = %v; want a short error saying it is not a PID", err)
	}
}
