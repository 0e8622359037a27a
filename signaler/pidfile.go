package signaler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pollreload/pollreload/internal/filetype"
)

// This file resolves a PID file (ProcessOptions.PIDFile) to a process and
// refuses stale files.

// fromPIDFile reads the PID file and returns its process. Every error is a
// *PIDFileError naming the file.
func (p *Process) fromPIDFile() (process, error) {
	t, err := p.pidFileTarget()
	if err != nil {
		return process{}, &PIDFileError{Path: p.pidFile, Err: err}
	}
	return t, nil
}

// pidFileTarget returns the process the PID file names. A PID whose process
// started after the file was last written cannot be the one that wrote it:
// the app died and the PID was reused, so the file is stale.
func (p *Process) pidFileTarget() (process, error) {
	pid, written, err := readPIDFile(p.pidFile)
	if err != nil {
		return process{}, err
	}
	if pid == 1 || pid == p.self {
		return process{}, fmt.Errorf("names pid %d, which pollreload never signals (PID 1 or itself)", pid)
	}
	st, err := readStat(p.procDir, pid)
	if err != nil {
		if isGone(err) {
			return process{}, fmt.Errorf("%w: pid %d is not running", ErrNoTarget, pid)
		}
		return process{}, err // names /proc/PID/stat
	}
	switch st.State {
	case 'Z':
		return process{}, fmt.Errorf("%w: pid %d (%s) is a zombie: it has exited and waits for its parent (pid %d) to reap it, so there is nothing to signal; restart the app", ErrNoTarget, pid, st.Comm, st.PPID)
	case 'X':
		return process{}, fmt.Errorf("%w: pid %d has exited", ErrNoTarget, pid)
	}
	argv0, emptyCmdline := readArgv0(p.procDir, pid)
	if st.Flags&pfKthread != 0 || emptyCmdline && st.PPID == 2 {
		// A kernel thread has no executable and no handler to reload with;
		// the file names one when it is not the app's PID file, or when the
		// app died and the kernel reused its PID.
		return process{}, fmt.Errorf("%w: pid %d (%s) is a kernel thread, not an application (it has no executable, /proc/%d/exe); the file is not the app's PID file, or is stale; not signalled", ErrNoTarget, pid, st.Comm, pid)
	}
	clock, err := readBootClock(p.procDir)
	if err != nil {
		return process{}, err
	}
	start := clock.startTime(st.StartTicks)
	if start.After(written.Add(startSlack)) {
		return process{}, fmt.Errorf("%w: the file is stale: pid %d (%s) started at %s, after the file was written at %s, so the PID was reused; not signalled",
			ErrNoTarget, pid, st.Comm, start.UTC().Format(time.RFC3339Nano), written.UTC().Format(time.RFC3339Nano))
	}
	return process{
		PID: pid, PPID: st.PPID, Comm: st.Comm, Argv0: argv0, Exe: readExe(p.procDir, pid),
		StartTicks: st.StartTicks, StartTime: start,
	}, nil
}

// maxPIDFileRead bounds how much of a PID file is read: the PID is on the
// first line, and a PID file pointed at something huge or endless must not
// make each reload read it all.
const maxPIDFileRead = 4 << 10

// readPIDFile returns the PID on the first line of path and when the file
// was last written. Only a regular file is read, and it is opened without
// blocking, so a FIFO or a device put in its place cannot hang the poll loop.
// Like postmaster.pid, the file may hold more lines after the PID. The
// errors leave the path to the caller (PIDFileError names it).
func readPIDFile(path string) (pid int, written time.Time, err error) {
	// Refuse other types before opening: opening a device may act on it.
	info, err := os.Stat(path)
	if err == nil && !info.Mode().IsRegular() {
		return 0, time.Time{}, notRegularPIDFile(info.Mode())
	}
	var f *os.File
	if err == nil {
		f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, time.Time{}, fmt.Errorf("%w: it does not exist yet", ErrNoTarget)
		}
		return 0, time.Time{}, withoutPath(err)
	}
	defer f.Close()
	// Stat again what was opened: it may have been swapped since.
	if info, err = f.Stat(); err != nil {
		return 0, time.Time{}, withoutPath(err)
	}
	if !info.Mode().IsRegular() {
		return 0, time.Time{}, notRegularPIDFile(info.Mode())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPIDFileRead))
	if err != nil {
		return 0, time.Time{}, withoutPath(err)
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	text := strings.TrimSpace(string(first))
	pid, err = strconv.Atoi(text)
	if err != nil || pid <= 0 {
		if len(text) > 40 {
			text = text[:40] + "..."
		}
		return 0, time.Time{}, fmt.Errorf("first line %q is not a PID", text)
	}
	return pid, info.ModTime(), nil
}

func notRegularPIDFile(mode os.FileMode) error {
	return fmt.Errorf("is a %s, not a regular file; want a file the app writes its PID to, such as /run/app.pid", filetype.Name(mode))
}

// withoutPath drops the path from a *fs.PathError of the PID file, which
// PIDFileError names already: "open: permission denied".
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
