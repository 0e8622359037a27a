package testenv

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLeftoversFindsAndRemovesALiveGroup(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(ledgerEnv, dir)
	// Started without Spawn, so no cleanup stops it: a leak.
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	note("pgids", strconv.Itoa(cmd.Process.Pid))
	note("mounts", t.TempDir()) // not mounted: not a leftover

	left := leftovers(dir)
	if len(left) != 1 || !strings.Contains(left[0], strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("leftovers = %q; want the sleep's process group only", left)
	}
	select {
	case err := <-done:
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			t.Errorf("sleep ended with %v; want killed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("leftovers did not kill the leaked group")
	}
	if left := leftovers(dir); len(left) != 0 {
		t.Errorf("second leftovers = %q; want none", left)
	}
}
