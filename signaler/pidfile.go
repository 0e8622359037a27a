package signaler

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// This file resolves PID_FILE to a process and refuses stale files.

// fromPIDFile reads the PID file and returns its process. A PID whose
// process started after the file was last written cannot be the one that
// wrote it: the app died and the PID was reused, so the file is stale.
func (p *Process) fromPIDFile() (process, error) {
	f, err := os.Open(p.pidFile)
	if err != nil {
		if os.IsNotExist(err) {
			return process{}, fmt.Errorf("%w: PID_FILE %s does not exist yet", ErrNoTarget, p.pidFile)
		}
		return process{}, fmt.Errorf("read PID_FILE: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return process{}, fmt.Errorf("read PID_FILE: %w", err)
	}
	buf := make([]byte, 64)
	n, _ := f.Read(buf)
	text := strings.TrimSpace(string(buf[:n]))
	pid, err := strconv.Atoi(text)
	if err != nil || pid <= 0 {
		return process{}, fmt.Errorf("read PID_FILE %s: %q is not a PID", p.pidFile, text)
	}
	if pid == 1 || pid == p.self {
		return process{}, fmt.Errorf("PID_FILE %s names pid %d, which pollreload never signals (PID 1 or itself)", p.pidFile, pid)
	}
	st, err := readStat(p.procDir, pid)
	if err != nil {
		if isGone(err) {
			return process{}, fmt.Errorf("%w: pid %d from PID_FILE %s is not running", ErrNoTarget, pid, p.pidFile)
		}
		return process{}, fmt.Errorf("read PID_FILE target: %w", err)
	}
	if st.State == 'Z' || st.State == 'X' {
		return process{}, fmt.Errorf("%w: pid %d from PID_FILE %s has exited", ErrNoTarget, pid, p.pidFile)
	}
	clock, err := readBootClock(p.procDir)
	if err != nil {
		return process{}, err
	}
	start := clock.startTime(st.StartTicks)
	if start.After(info.ModTime().Add(startSlack)) {
		return process{}, fmt.Errorf("%w: PID_FILE %s is stale: pid %d (%s) started at %s, after the file was written at %s, so the PID was reused; not signalled",
			ErrNoTarget, p.pidFile, pid, st.Comm, start.UTC().Format(time.RFC3339Nano), info.ModTime().UTC().Format(time.RFC3339Nano))
	}
	argv0, _ := readArgv0(p.procDir, pid)
	return process{
		PID: pid, PPID: st.PPID, Comm: st.Comm, Argv0: argv0, Exe: readExe(p.procDir, pid),
		StartTicks: st.StartTicks, StartTime: start,
	}, nil
}
