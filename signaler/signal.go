package signaler

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSignal is the last standard signal. Real-time signals are left out: no
// application documents one as its reload signal, and glibc reserves some.
const maxSignal = 31

// ParseSignal reads a reload signal written as a name with or without the
// SIG prefix in any case ("SIGHUP", "HUP", "hup", "sigusr1") or as a number
// ("1"). SIGKILL and SIGSTOP are refused: no application can catch them, so
// they could never mean "reload".
func ParseSignal(s string) (syscall.Signal, error) {
	in := strings.TrimSpace(s)
	var sig syscall.Signal
	if n, err := strconv.Atoi(in); err == nil {
		if n >= 1 && n <= maxSignal {
			sig = syscall.Signal(n)
		}
	} else if in != "" {
		name := strings.ToUpper(in)
		if !strings.HasPrefix(name, "SIG") {
			name = "SIG" + name
		}
		sig = unix.SignalNum(name)
	}
	if err := checkSignal(sig); err != nil {
		return 0, &SignalError{Value: s, Want: err.Error()}
	}
	return sig, nil
}

// SignalError is a value ParseSignal refuses: Want says why and what is
// accepted.
type SignalError struct {
	Value string
	Want  string
}

func (e *SignalError) Error() string { return fmt.Sprintf("invalid signal %q: %s", e.Value, e.Want) }

// checkSignal refuses what cannot be a reload signal: anything outside 1 to
// maxSignal, and SIGKILL and SIGSTOP, which no application can catch.
func checkSignal(sig syscall.Signal) error {
	if sig < 1 || sig > maxSignal {
		return fmt.Errorf("want a name such as SIGHUP, HUP or hup, or a number from 1 to %d", maxSignal)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGSTOP {
		return fmt.Errorf("%s cannot be caught, so it cannot ask an application to reload; use a signal the application handles, such as SIGHUP", signalName(sig))
	}
	return nil
}

// signalName returns the conventional name ("SIGHUP") or, for a number the
// platform does not name, "signal N".
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return fmt.Sprintf("signal %d", int(sig))
}
