package signaler

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// This file reads the few /proc files lookup, safety checks and delivery
// need. Parsers take bytes and never panic, so they are fuzzed directly.

// clockTicksPerSecond is USER_HZ, the unit of /proc/PID/stat times. The
// kernel fixes it at 100 for user space on every architecture Go supports,
// whatever the kernel's internal HZ, so sysconf(_SC_CLK_TCK) is not needed.
const clockTicksPerSecond = 100

// pfKthread is PF_KTHREAD in the flags field of /proc/PID/stat.
const pfKthread = 0x00200000

// procStat holds the fields of /proc/PID/stat this package uses.
type procStat struct {
	Comm       string // at most 15 bytes: the kernel cuts longer names
	State      byte   // R, S, D, Z, T, ...
	PPID       int
	Flags      uint64
	StartTicks uint64 // clock ticks from boot to process start
}

// parseStat parses the contents of /proc/PID/stat. The name sits between the
// first '(' and the LAST ')', because a name may itself hold spaces and ')'.
func parseStat(b []byte) (procStat, error) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return procStat{}, errors.New("parse stat: no (name) field")
	}
	// After the name: state(3) ppid(4) pgrp session tty tpgid flags(9) ...
	// starttime(22); index i here is field i+3.
	fields := strings.Fields(string(b[closing+1:]))
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("parse stat: %d fields after the name; want at least 20", len(fields))
	}
	if len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("parse stat: state %q is not one letter", fields[0])
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil || ppid < 0 {
		return procStat{}, fmt.Errorf("parse stat: ppid %q is not a PID", fields[1])
	}
	flags, err := strconv.ParseUint(fields[6], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse stat: flags %q: %w", fields[6], err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse stat: starttime %q: %w", fields[19], err)
	}
	return procStat{
		Comm:       string(b[open+1 : closing]),
		State:      fields[0][0],
		PPID:       ppid,
		Flags:      flags,
		StartTicks: start,
	}, nil
}

// procStatus holds the fields of /proc/PID/status this package uses.
type procStatus struct {
	UID    int    // real UID, the one kill(2) compares against
	SigCgt uint64 // signals with a handler installed; bit N-1 is signal N
	SigIgn uint64 // signals set to SIG_IGN
}

// parseStatus parses the contents of /proc/PID/status. Uid, SigCgt and SigIgn
// are required: without them the safety check cannot be made.
func parseStatus(b []byte) (procStatus, error) {
	var st procStatus
	var haveUID, haveCgt, haveIgn bool
	for line := range bytes.Lines(b) {
		key, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v := strings.TrimSpace(string(value))
		var err error
		switch string(key) {
		case "Uid":
			real, _, _ := strings.Cut(v, "\t")
			st.UID, err = strconv.Atoi(strings.TrimSpace(real))
			haveUID = err == nil && st.UID >= 0
		case "SigCgt":
			st.SigCgt, err = strconv.ParseUint(v, 16, 64)
			haveCgt = err == nil
		case "SigIgn":
			st.SigIgn, err = strconv.ParseUint(v, 16, 64)
			haveIgn = err == nil
		}
		if err != nil {
			return procStatus{}, fmt.Errorf("parse status: %s %q: %w", key, v, err)
		}
	}
	if !haveUID || !haveCgt || !haveIgn {
		return procStatus{}, errors.New("parse status: Uid, SigCgt or SigIgn missing")
	}
	return st, nil
}

// parseUptime returns the seconds since boot from /proc/uptime.
func parseUptime(b []byte) (time.Duration, error) {
	first, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	secs, err := strconv.ParseFloat(first, 64)
	if err != nil || secs < 0 {
		return 0, fmt.Errorf("parse uptime %q: not a number of seconds", first)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// readStat reads /proc/PID/stat under procDir.
func readStat(procDir string, pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	st, err := parseStat(b)
	if err != nil {
		return procStat{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return st, nil
}

// readStatus reads /proc/PID/status under procDir.
func readStatus(procDir string, pid int) (procStatus, error) {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "status"))
	if err != nil {
		return procStatus{}, err
	}
	st, err := parseStatus(b)
	if err != nil {
		return procStatus{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return st, nil
}

// readArgv0 returns argv[0] from /proc/PID/cmdline and whether the command
// line is empty (as it is for kernel threads).
func readArgv0(procDir string, pid int) (argv0 string, empty bool) {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return "", true
	}
	first, _, _ := bytes.Cut(b, []byte{0})
	return string(first), false
}

// readExe returns the path /proc/PID/exe points to, or "" when it cannot be
// read (another user's process without ptrace rights, a kernel thread).
func readExe(procDir string, pid int) string {
	exe, err := os.Readlink(filepath.Join(procDir, strconv.Itoa(pid), "exe"))
	if err != nil {
		return ""
	}
	// An executable replaced on disk (a package upgrade) still runs.
	return strings.TrimSuffix(exe, " (deleted)")
}

// listPIDs returns the numeric entries of procDir.
func listPIDs(procDir string) ([]int, error) {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// bootClock turns start ticks into wall-clock times.
type bootClock struct{ boot time.Time }

// readBootClock derives the boot time from /proc/uptime rather than btime in
// /proc/stat: btime is cut to whole seconds, which would let a PID reused
// within a second of a PID file being written pass as the original, and
// would blur "started after the change" by up to a second.
func readBootClock(procDir string) (bootClock, error) {
	b, err := os.ReadFile(filepath.Join(procDir, "uptime"))
	if err != nil {
		return bootClock{}, fmt.Errorf("read boot time: %w", err)
	}
	up, err := parseUptime(b)
	if err != nil {
		return bootClock{}, fmt.Errorf("read boot time: %w", err)
	}
	return bootClock{boot: time.Now().Add(-up)}, nil
}

// startTime converts a starttime field to wall-clock time.
func (c bootClock) startTime(ticks uint64) time.Time {
	return c.boot.Add(time.Duration(ticks) * (time.Second / clockTicksPerSecond))
}
