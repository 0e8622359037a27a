package verify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
	"github.com/pollreload/pollreload/signaler"
)

// reexecScript re-executes itself in place on SIGHUP, as sshd does: same
// PID, same start time, a new image. $2 says what to do instead: "ignore"
// keeps running without exec.
const reexecScript = `
if [ "$2" = ignore ]; then trap 'echo HUP >> "$1"' HUP; else trap 'exec /bin/sh -c "$SCRIPT" sh "$1" "$2"' HUP; fi
echo ready >> "$1"
while :; do sleep 0.05; done
`

// target returns the signaler.Target of a running process.
func targetOf(t *testing.T, pid int, name string) signaler.Target {
	t.Helper()
	st, err := signaler.ReadProcStat("", pid)
	if err != nil {
		t.Fatal(err)
	}
	return signaler.Target{PID: pid, Name: name, StartTicks: st.StartTicks}
}

// hup runs one delivery of SIGHUP to pid with e's hooks around it.
func hup(t *testing.T, e Verifier, tg signaler.Target) error {
	t.Helper()
	e.Before(t.Context())
	at := time.Now()
	if err := syscall.Kill(tg.PID, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	return e.After(t.Context(), Delivery{At: at, Targets: []signaler.Target{tg}})
}

func TestExecVerifier(t *testing.T) {
	opts := ExecOptions{Timeout: time.Second, Grace: 200 * time.Millisecond}
	t.Run("re-executes in place", func(t *testing.T) {
		t.Setenv("SCRIPT", reexecScript)
		sh := startShell(t, reexecScript, "exec")
		tg := targetOf(t, sh.PID(), "sh")
		if err := hup(t, NewExecVerifier(opts), tg); err != nil {
			t.Fatalf("After = %v; want accepted", err)
		}
		if again := targetOf(t, sh.PID(), "sh"); again.StartTicks != tg.StartTicks {
			t.Fatalf("start time %d -> %d; the script should have re-executed in place", tg.StartTicks, again.StartTicks)
		}
		// And again: each delivery compares with its own Before.
		if err := hup(t, NewExecVerifier(opts), tg); err != nil {
			t.Fatalf("second After = %v; want accepted", err)
		}
	})
	t.Run("alive without exec", func(t *testing.T) {
		sh := startShell(t, reexecScript, "ignore")
		err := hup(t, NewExecVerifier(opts), targetOf(t, sh.PID(), "sh"))
		if err == nil || errors.Is(err, signaler.ErrRejected) || errors.Is(err, signaler.ErrTargetDied) || !strings.Contains(err.Error(), "did not re-execute itself within 1s of SIGHUP") {
			t.Fatalf("After = %v; want an unknown verdict: alive, but no re-exec", err)
		}
		t.Log(err)
	})
	t.Run("dies", func(t *testing.T) {
		sh := startShell(t, "echo ready >> $1; while :; do sleep 0.05; done")
		err := hup(t, NewExecVerifier(opts), targetOf(t, sh.PID(), "sh"))
		if !errors.Is(err, signaler.ErrTargetDied) {
			t.Fatalf("After = %v; want target_died", err)
		}
	})
}

// TestExecVerifierLayoutHidden: the kernel shows startcode 1, endcode 1
// and startstack 0 to a reader not allowed to trace the process; the
// verifier says why it cannot tell instead of waiting for an exec it could
// never see. The /proc here is a copy with such a stat line.
func TestExecVerifierLayoutHidden(t *testing.T) {
	proc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "4242"), 0o755); err != nil {
		t.Fatal(err)
	}
	stat := "4242 (sshd) S 1 4242 4242 0 -1 4194560 1089 0 0 0 1 2 0 0 20 0 1 0 113846 15056896 2277 18446744073709551615 1 1 0 0 0 0 0 4096 81925 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	if err := os.WriteFile(filepath.Join(proc, "4242", "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	e := NewExecVerifier(ExecOptions{ProcDir: proc})
	e.Before(t.Context())
	err := e.After(t.Context(), Delivery{At: time.Now(), Targets: []signaler.Target{{PID: 4242, Name: "sshd", StartTicks: 113846}}})
	if !errors.Is(err, ErrLayoutHidden) || !strings.Contains(err.Error(), "CAP_SYS_PTRACE") {
		t.Fatalf("After = %v; want ErrLayoutHidden with the fix", err)
	}
	t.Log(err)
}

// TestExecVerifierOnSSHD: Debian's sshd, signalled with a good and then a
// bad configuration: the re-exec is seen and accepted, then sshd's exit is
// target_died.
func TestExecVerifierOnSSHD(t *testing.T) {
	s := testenv.StartSSHD(t, "one")
	tg := targetOf(t, s.Proc.PID(), "sshd")
	e := NewExecVerifier(ExecOptions{Timeout: 10 * time.Second})
	s.Write(t, "two", "")
	if err := hup(t, e, tg); err != nil {
		t.Fatalf("valid: After = %v; want accepted", err)
	}
	if v, err := s.Version(t.Context()); err != nil || !strings.HasSuffix(v, " two") {
		t.Errorf("sshd says %q (%v); want the addendum two", v, err)
	}
	s.Write(t, "three", "NoSuchOption yes")
	if err := hup(t, e, tg); !errors.Is(err, signaler.ErrTargetDied) {
		t.Fatalf("invalid: After = %v; want target_died", err)
	}
}
