package signaler

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestReloadExceptSkipsTold is issue 9 #2 at the signaler: two processes
// share a name, one catches SIGHUP and one (`exec -a NAME sleep`, as any
// user can start) does not. Reload tells the first, names the second in
// Outcome.Failed with its own error, and ReloadExcept with the told one as
// done never signals it again, however often it is retried.
func TestReloadExceptSkipsTold(t *testing.T) {
	dir := t.TempDir()
	name := uniqueName(t, "dup")
	catcher := startHelper(t, helperOpts{path: linkAs(t, dir, name, testBinary(t)), mode: "catch", out: filepath.Join(dir, "out")})
	waitLine(t, catcher.out, "ready", 1)
	sleeper := startHelper(t, helperOpts{path: "/bin/sleep", argv0: name, args: []string{"30"}})
	time.Sleep(50 * time.Millisecond) // both started a clock tick before the change
	p, err := NewProcess(ProcessOptions{Names: []string{name}, Policy: PolicyAll})
	if err != nil {
		t.Fatal(err)
	}

	changed := time.Now()
	out, err := p.Reload(t.Context(), changed)
	if !errors.Is(err, ErrNotCatching) {
		t.Fatalf("Reload: error %v; want one wrapping ErrNotCatching", err)
	}
	if !slices.Equal(pids(out.Signalled), []int{catcher.pid()}) {
		t.Fatalf("Signalled = %v; want [%d]", pids(out.Signalled), catcher.pid())
	}
	if len(out.Failed) != 1 || out.Failed[0].Target.PID != sleeper.pid() || out.Failed[0].Result() != ResultNotCatching {
		t.Fatalf("Failed = %+v; want pid %d, not_catching", out.Failed, sleeper.pid())
	}
	if out.Signalled[0].StartTicks == 0 {
		t.Errorf("Signalled[0].StartTicks = 0; want the process's start time")
	}
	waitLine(t, catcher.out, "SIGHUP", 1)

	done := out.Signalled
	for i := 0; i < 3; i++ {
		again, err := p.ReloadExcept(t.Context(), changed, done)
		if !errors.Is(err, ErrNotCatching) {
			t.Errorf("retry %d: error %v; want ErrNotCatching for the sleeper", i+1, err)
		}
		if len(again.Signalled) != 0 || !slices.Equal(pids(again.Skipped), []int{catcher.pid()}) {
			t.Errorf("retry %d: Signalled %v, Skipped %v; want none, [%d]", i+1, pids(again.Signalled), pids(again.Skipped), catcher.pid())
		}
	}
	barrier(t, catcher.pid(), catcher.out)
	if n := count(catcher.out, "SIGHUP"); n != 1 {
		t.Errorf("the catching process got %d SIGHUPs for one change; want 1", n)
	}
	if !alive(sleeper.pid()) {
		t.Errorf("the sleeper (pid %d) died: the refused signal was sent", sleeper.pid())
	}

	// Done is by identity, not PID alone: another process is not skipped
	// because it has a told one's PID.
	other := Target{PID: catcher.pid(), Name: name, StartTicks: out.Signalled[0].StartTicks + 1}
	again, _ := p.ReloadExcept(t.Context(), changed, []Target{other})
	if !slices.Equal(pids(again.Signalled), []int{catcher.pid()}) {
		t.Errorf("done with the PID but another start time: Signalled %v; want [%d]", pids(again.Signalled), catcher.pid())
	}
	waitLine(t, catcher.out, "SIGHUP", 2)
}
