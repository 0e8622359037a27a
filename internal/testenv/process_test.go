package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSpawnStopKillsTheProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// The shell ignores SIGTERM and its child sleeps on: only the group
	// kill after the grace period can end them.
	cmd := exec.Command("sh", "-c", `trap "" TERM; sleep 300 & echo $! > `+pidFile+`; echo started; wait`)
	p := Spawn(t, "sh", cmd)
	p.Grace = 500 * time.Millisecond
	WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(p.Output(), "started") {
			return errors.New("shell has not started its child")
		}
		return nil
	})
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	p.Stop()
	if !p.Exited() {
		t.Fatal("leader still running after Stop")
	}
	WaitFor(t, 10*time.Second, func() error {
		if alive(child) {
			return errors.New("child " + strconv.Itoa(child) + " still alive")
		}
		return nil
	})
	if got := p.ExitCode(); got != -1 {
		t.Errorf("exit code %d; want -1 (killed)", got)
	}
}

func TestSpawnExitStatus(t *testing.T) {
	p := Spawn(t, "sh", exec.Command("sh", "-c", "echo out; echo err >&2; exit 3"))
	var exitErr *exec.ExitError
	if err := p.Wait(10 * time.Second); !errors.As(err, &exitErr) {
		t.Fatalf("Wait = %v; want an exit error", err)
	}
	if got := p.ExitCode(); got != 3 {
		t.Errorf("exit code %d; want 3", got)
	}
	if got := p.Output(); !strings.Contains(got, "out") || !strings.Contains(got, "err") {
		t.Errorf("output %q; want stdout and stderr", got)
	}
}

func TestTailBufferKeepsTheTail(t *testing.T) {
	b := &tailBuffer{max: 4}
	b.Write([]byte("abc"))
	b.Write([]byte("def"))
	if got, want := b.String(), "[2 bytes dropped]\ncdef"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestFreePort(t *testing.T) {
	addr := FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Errorf("FreeAddr = %q; want 127.0.0.1:PORT", addr)
	}
}

func TestRequireTool(t *testing.T) {
	t.Setenv(RequireToolsEnv, "")
	t.Run("present", func(t *testing.T) {
		if got := RequireTool(t, "sh", "dash"); !filepath.IsAbs(got) {
			t.Errorf("RequireTool(sh) = %q; want an absolute path", got)
		}
	})
	ran := false
	t.Run("missing skips", func(t *testing.T) {
		RequireTool(t, "no-such-tool-pollreload", "no-such-package")
		ran = true
	})
	if ran {
		t.Error("test went on after RequireTool of a missing tool; want a skip")
	}
}

func TestPoll(t *testing.T) {
	calls := 0
	err := Poll(5*time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("Poll = %v after %d calls; want nil after 3", err, calls)
	}
	err = Poll(50*time.Millisecond, func() error { return errors.New("never") })
	if err == nil || err.Error() != "never" {
		t.Errorf("Poll = %v; want the condition's last error", err)
	}
}

// alive reports whether pid runs; a zombie waiting for init to reap it
// counts as dead.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised comm, which may hold spaces.
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}
