package signaler

import "syscall"

// This file exports the few process facts the verify package reads after a
// delivery (is the signalled process still the same one, which children does
// it have), and the excerpt of an application's answer, so that verify needs
// no /proc parser of its own.

// ProcStat is what /proc/PID/stat says of a process: its state letter (R, S,
// Z, ...), its parent and its start time in clock ticks since boot.
type ProcStat struct {
	State      byte
	PPID       int
	StartTicks uint64
}

// ReadProcStat reads /proc/PID/stat under procDir ("" means /proc). An
// error for which IsGone holds means the process has exited.
func ReadProcStat(procDir string, pid int) (ProcStat, error) {
	if procDir == "" {
		procDir = "/proc"
	}
	st, err := readStat(procDir, pid)
	return ProcStat{State: st.State, PPID: st.PPID, StartTicks: st.StartTicks}, err
}

// ListPIDs returns the PIDs under procDir ("" means /proc).
func ListPIDs(procDir string) ([]int, error) {
	if procDir == "" {
		procDir = "/proc"
	}
	return listPIDs(procDir)
}

// IsGone reports whether a /proc read failed because the process exited.
func IsGone(err error) bool { return isGone(err) }

// SignalName returns the conventional name of sig ("SIGHUP"), or "signal N".
func SignalName(sig syscall.Signal) string { return signalName(sig) }

// Excerpt makes an application's answer safe and short for logs and errors:
// URLs lose their userinfo and query values, every secret is masked, the
// text is put on one line without control characters and cut to 512 bytes.
func Excerpt(body []byte, secrets []string) string { return excerpt(body, secrets) }
