package poller

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// TestMain runs the wall-clock tests of the whole loop several at a time
// (unless -parallel is given): they spend their time waiting for ticks, not
// on a CPU.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(testenv.VerifyNoLeaks(testenv.Main(m)))
}

// TestPartialDeliveryNeverResignals is issue 9 #2 through the whole loop,
// with real processes and real signals: two processes are named alike, one
// catches SIGHUP and one (`exec -a NAME sleep`) does not. One change must
// reach the first exactly once while the second keeps the reload pending,
// retried every second; once the second is gone, the change counts as
// delivered, still without a second SIGHUP to the first.
func TestPartialDeliveryNeverResignals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	write(t, conf, "v1")
	name := testenv.UniqueName("dupapp")
	catcher := testenv.StartTarget(t, name, dir)
	cmd := exec.Command("/bin/sleep", "60")
	cmd.Args[0] = name
	sleeper := testenv.Spawn(t, name+" (sleep)", cmd)

	p, err := signaler.NewProcess(signaler.ProcessOptions{Names: []string{name}, Policy: signaler.PolicyAll})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, Options{Roots: []string{dir}, Targets: one(p)})
	write(t, conf, "v2")
	h.waitFor("two refused attempts", func() bool {
		return h.value("pollreload_reloads_total", "result", "not_catching") >= 2
	})
	if n := len(catcher.Reloads(t)); n != 1 {
		t.Errorf("the catching process reloaded %d times for one change; want 1", n)
	}
	if got := h.value("pollreload_reloads_total", "result", "success"); got != 1 {
		t.Errorf(`reloads_total{result="success"} = %v; want 1`, got)
	}
	if got := h.value("pollreload_reload_pending"); got != 1 {
		t.Errorf("reload_pending = %v; want 1 while the sleeper has not got it", got)
	}
	_ = sleeper.Stop() // the exit status of a SIGTERMed sleep is an error
	h.waitFor("the change counted delivered", func() bool { return h.value("pollreload_reload_pending") == 0 })
	h.scans(3)
	if n := len(catcher.Reloads(t)); n != 1 {
		t.Errorf("after the sleeper left, the catching process has reloaded %d times; want 1", n)
	}
}

// aliveVerifier verifies a delivery as the daemon's default verification
// does: every process signalled must still be there.
type aliveVerifier struct{}

func (aliveVerifier) Before(context.Context) {}

func (aliveVerifier) After(_ context.Context, d verify.Delivery) error {
	for _, p := range d.Targets {
		if err := syscall.Kill(p.PID, 0); err != nil {
			return fmt.Errorf("pid %d (%s) is gone: %w", p.PID, p.Name, err)
		}
	}
	return nil
}

// TestPartialDeliveryVerifiedCountsSuccess is issue 21 #8: with the
// daemon's verification on (every process target has it), two processes
// match, one catches SIGHUP and one does not. The one that took the change
// must count one verified success while the other keeps the reload
// pending; before, success stayed 0 as long as any process was pending,
// since only a delivery that reached every process was verified.
func TestPartialDeliveryVerifiedCountsSuccess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	write(t, conf, "v1")
	name := testenv.UniqueName("vpart")
	catcher := testenv.StartTarget(t, name, dir)
	cmd := exec.Command("/bin/sleep", "60")
	cmd.Args[0] = name
	sleeper := testenv.Spawn(t, name+" (sleep)", cmd)

	p, err := signaler.NewProcess(signaler.ProcessOptions{Names: []string{name}, Policy: signaler.PolicyAll})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, Options{Roots: []string{dir}, Targets: []Target{{Reloader: p, Verifier: aliveVerifier{}}}})
	write(t, conf, "v2")
	h.waitFor("two refused attempts", func() bool {
		return h.value("pollreload_reloads_total", "result", "not_catching") >= 2
	})
	if got := h.value("pollreload_reloads_total", "result", "success"); got != 1 {
		t.Errorf(`reloads_total{result="success"} = %v while the sleeper is pending; want 1 (the catching process took it)`, got)
	}
	if n := len(catcher.Reloads(t)); n != 1 {
		t.Errorf("the catching process reloaded %d times for one change; want 1", n)
	}
	if got := h.value("pollreload_reload_pending"); got != 1 {
		t.Errorf("reload_pending = %v; want 1 while the sleeper has not got it", got)
	}
	_ = sleeper.Stop()
	h.waitFor("the change counted delivered", func() bool { return h.value("pollreload_reload_pending") == 0 })
	h.scans(3)
	if got := h.value("pollreload_reloads_total", "result", "success"); got != 1 {
		t.Errorf(`after the sleeper left, reloads_total{result="success"} = %v; want 1`, got)
	}
	if n := len(catcher.Reloads(t)); n != 1 {
		t.Errorf("after the sleeper left, the catching process has reloaded %d times; want 1", n)
	}
}
