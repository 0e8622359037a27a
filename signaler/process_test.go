package signaler

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcessReloadPolicies starts a tree (a parent and two children of the
// same name) and, later, a lone process of that name, then checks which
// processes each policy really signals.
func TestProcessReloadPolicies(t *testing.T) {
	dir := t.TempDir()
	name := uniqueName(t, "tree")
	bin := linkAs(t, dir, name, testBinary(t))
	tree := startHelper(t, helperOpts{path: bin, mode: "tree", out: filepath.Join(dir, "tree")})
	outs := []string{tree.out, tree.out + ".1", tree.out + ".2"}
	for _, out := range outs {
		waitLine(t, out, "ready", 1)
	}
	kids := childPIDs(t, tree.out)
	if len(kids) != 2 {
		t.Fatalf("tree helper reported children %v; want 2", kids)
	}
	time.Sleep(50 * time.Millisecond) // a later clock tick than the whole tree
	lone := startHelper(t, helperOpts{path: bin, mode: "catch", out: filepath.Join(dir, "lone")})
	waitLine(t, lone.out, "ready", 1)

	pidOut := map[int]string{tree.pid(): outs[0], kids[0]: outs[1], kids[1]: outs[2], lone.pid(): lone.out}
	tests := []struct {
		policy Policy
		want   []int
	}{
		{PolicyRoots, []int{tree.pid(), lone.pid()}},
		{PolicyAll, []int{tree.pid(), kids[0], kids[1], lone.pid()}},
		{PolicyOldest, []int{tree.pid()}},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			before := make(map[int]int)
			for pid, out := range pidOut {
				before[pid] = count(out, "SIGHUP")
			}
			p, err := NewProcess(ProcessOptions{Names: []string{name}, Policy: tt.policy})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Reload(t.Context(), time.Now())
			if err != nil {
				t.Fatalf("Reload: %v", err)
			}
			want := slices.Sorted(slices.Values(tt.want))
			if g := pids(got.Signalled); !slices.Equal(g, want) {
				t.Errorf("Signalled = %v; want %v", g, want)
			}
			for pid, out := range pidOut {
				wantN := before[pid]
				if slices.Contains(tt.want, pid) {
					wantN++
					// Two signals sent one after the other can be handled
					// in either order when different threads take them, so
					// the SIGUSR1 barrier alone could overtake the SIGHUP.
					waitLine(t, out, "SIGHUP", wantN)
				}
				barrier(t, pid, out)
				if n := count(out, "SIGHUP"); n != wantN {
					t.Errorf("pid %d received %d SIGHUP; want %d", pid, n, wantN)
				}
			}
		})
	}
}

// TestProcessInspect checks `pollreload check` sees every match, marks the
// policy's choice, and signals nothing.
func TestProcessInspect(t *testing.T) {
	dir := t.TempDir()
	name := uniqueName(t, "insp")
	tree := startHelper(t, helperOpts{path: linkAs(t, dir, name, testBinary(t)), mode: "tree", out: filepath.Join(dir, "tree")})
	outs := []string{tree.out, tree.out + ".1", tree.out + ".2"}
	for _, out := range outs {
		waitLine(t, out, "ready", 1)
	}
	kids := childPIDs(t, tree.out)
	p, err := NewProcess(ProcessOptions{Names: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	cands, err := p.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[int]Candidate)
	for _, c := range cands {
		got[c.PID] = c
	}
	want := map[int]struct {
		ppid     int
		selected bool
	}{tree.pid(): {os.Getpid(), true}, kids[0]: {tree.pid(), false}, kids[1]: {tree.pid(), false}}
	if len(got) != len(want) {
		t.Fatalf("Inspect found %d candidates %+v; want pids %v", len(got), cands, []int{tree.pid(), kids[0], kids[1]})
	}
	for pid, w := range want {
		c, ok := got[pid]
		switch {
		case !ok:
			t.Errorf("pid %d missing from Inspect", pid)
		case c.PPID != w.ppid || c.Selected != w.selected || c.Name != name || c.UID != os.Getuid() || !c.Catches || c.KillErr != nil:
			t.Errorf("candidate %+v; want ppid %d, selected %v, name %q, uid %d, catches, no kill error", c, w.ppid, w.selected, name, os.Getuid())
		case c.StartTime.After(time.Now()) || time.Since(c.StartTime) > time.Minute:
			t.Errorf("pid %d start time %s; want within the last minute", pid, c.StartTime)
		}
	}
	for i, pid := range []int{tree.pid(), kids[0], kids[1]} {
		barrier(t, pid, outs[i])
		if n := count(outs[i], "SIGHUP"); n != 0 {
			t.Errorf("Inspect signalled pid %d (%d SIGHUP)", pid, n)
		}
	}
}

// TestProcessReloadSkipsTargetsStartedAfterChange checks a process started
// after the change is reported up to date and not signalled.
func TestProcessReloadSkipsTargetsStartedAfterChange(t *testing.T) {
	name := uniqueName(t, "late")
	changedAt := time.Now()
	time.Sleep(2 * startSlack) // start clearly after the change
	h := startHelper(t, helperOpts{path: linkAs(t, t.TempDir(), name, testBinary(t)), mode: "catch"})
	waitLine(t, h.out, "ready", 1)
	p, err := NewProcess(ProcessOptions{Names: []string{name}})
	if err != nil {
		t.Fatal(err)
	}

	got, err := p.Reload(t.Context(), changedAt)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if len(got.Signalled) != 0 || !slices.Equal(pids(got.UpToDate), []int{h.pid()}) {
		t.Errorf("Outcome = %+v; want only pid %d up to date", got, h.pid())
	}
	barrier(t, h.pid(), h.out)
	if n := count(h.out, "SIGHUP"); n != 0 {
		t.Errorf("up-to-date target received %d SIGHUP; want 0", n)
	}

	// A change after the start does need the signal, and so does one at an
	// unknown (zero) time.
	for i, at := range []time.Time{time.Now(), {}} {
		got, err = p.Reload(t.Context(), at)
		if err != nil {
			t.Fatalf("Reload(%s): %v", at, err)
		}
		if !slices.Equal(pids(got.Signalled), []int{h.pid()}) || len(got.UpToDate) != 0 {
			t.Errorf("Reload(%s) = %+v; want pid %d signalled", at, got, h.pid())
		}
		waitLine(t, h.out, "SIGHUP", i+1)
	}
}

// lateHandlerScript is a shell that installs its SIGHUP handler only once
// the gate file exists. Until then SIGHUP would kill it, as it would kill
// nginx during start-up. It is a shell, not the Go test binary, because the
// Go runtime installs a handler for SIGHUP in every Go program at start.
const lateHandlerScript = `
while [ ! -e "$2" ]; do sleep 0.01; done
trap 'echo SIGHUP >> "$1"' HUP
echo ready >> "$1"
while :; do sleep 0.05; done
`

// TestProcessReloadWaitsForHandler checks the safety rule against a process
// that catches SIGHUP only after a delay.
func TestProcessReloadWaitsForHandler(t *testing.T) {
	dir := t.TempDir()
	name := uniqueName(t, "sh")
	out, gate := filepath.Join(dir, "out"), filepath.Join(dir, "gate")
	h := startHelper(t, helperOpts{path: linkAs(t, dir, name, "/bin/sh"), args: []string{"-c", lateHandlerScript, name, out, gate}, out: out})
	p, err := NewProcess(ProcessOptions{Names: []string{name}})
	if err != nil {
		t.Fatal(err)
	}

	_, err = p.Reload(t.Context(), time.Now())
	if !errors.Is(err, ErrNotCatching) {
		t.Fatalf("Reload before the handler: error %v; want ErrNotCatching", err)
	}
	t.Logf("before the handler: %v", err)
	// The fix (RELOAD_FORCE) is the main package's to add: fixes_test.go.
	var nc *NotCatchingError
	if !errors.As(err, &nc) || nc.PID != h.pid() || nc.Name != name || nc.Signal != syscall.SIGHUP || nc.Ignored || nc.Action != "terminate" {
		t.Errorf("Reload before the handler = %#v; want a NotCatchingError for pid %d (%s), SIGHUP, terminate", err, h.pid(), name)
	}
	want := "target does not catch the reload signal: pid " + strconv.Itoa(h.pid()) + " (" + name + ") has no SIGHUP handler yet and the default action would terminate it"
	if err.Error() != want {
		t.Errorf("Reload before the handler = %q; want %q", err, want)
	}
	if got := Reason(err); got != "not_catching" {
		t.Errorf("Reason = %q; want not_catching", got)
	}
	if !alive(h.pid()) {
		t.Fatalf("pid %d died: the refused signal was sent anyway", h.pid())
	}
	if c := inspectPID(t, p, h.pid()); c.Catches || !c.Selected {
		t.Errorf("Inspect before the handler = %+v; want selected, not catching", c)
	}

	// Had the first SIGHUP gone out, the shell would be dead and never
	// write "ready".
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, "ready", 1)
	if c := inspectPID(t, p, h.pid()); !c.Catches || !c.Selected {
		t.Errorf("Inspect after the handler = %+v; want selected and catching", c)
	}
	got, err := p.Reload(t.Context(), time.Now())
	if err != nil {
		t.Fatalf("Reload after the handler: %v", err)
	}
	t.Logf("after the handler: signalled %+v", got.Signalled)
	waitLine(t, out, "SIGHUP", 1)
	if !alive(h.pid()) {
		t.Errorf("pid %d died after the reload", h.pid())
	}
	if n := count(out, "SIGHUP"); n != 1 {
		t.Errorf("received %d SIGHUP; want 1", n)
	}
}

// inspectPID returns the Inspect candidate for pid. The shell helpers fork
// for each sleep, and until it execs, a fork is a match too (a child of a
// match, so never selected under roots); tests look for the shell itself.
func inspectPID(t *testing.T, p *Process, pid int) Candidate {
	t.Helper()
	cands, err := p.Inspect()
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	for _, c := range cands {
		if c.PID == pid {
			return c
		}
	}
	t.Fatalf("Inspect = %+v; want pid %d among them", cands, pid)
	return Candidate{}
}

// TestProcessReloadForce checks RELOAD_FORCE sends to a process without a
// handler, which then dies of it: the override does what it says.
func TestProcessReloadForce(t *testing.T) {
	dir := t.TempDir()
	name := uniqueName(t, "sh")
	out, gate := filepath.Join(dir, "out"), filepath.Join(dir, "gate")
	h := startHelper(t, helperOpts{path: linkAs(t, dir, name, "/bin/sh"), args: []string{"-c", lateHandlerScript, name, out, gate}, out: out})
	p, err := NewProcess(ProcessOptions{Names: []string{name}, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Reload(t.Context(), time.Now())
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if !slices.Equal(pids(got.Signalled), []int{h.pid()}) {
		t.Errorf("Signalled = %v; want [%d]", pids(got.Signalled), h.pid())
	}
	err = h.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGHUP {
		t.Errorf("shell ended with %v; want killed by SIGHUP", err)
	}
}

// TestProcessReloadPIDFile checks PID_FILE delivery, re-reading the file on
// every reload, and the refusal of a stale file.
func TestProcessReloadPIDFile(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "app.pid")
	bin := linkAs(t, dir, uniqueName(t, "pidf"), testBinary(t))
	p, err := NewProcess(ProcessOptions{PIDFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("missing file", func(t *testing.T) {
		_, err := p.Reload(t.Context(), time.Now())
		if !errors.Is(err, ErrNoTarget) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("Reload = %v; want ErrNoTarget saying the file does not exist", err)
		}
	})

	first := startHelper(t, helperOpts{path: bin, mode: "catch", out: filepath.Join(dir, "first")})
	waitLine(t, first.out, "ready", 1)
	writePID(t, pidFile, first.pid())
	t.Run("fresh file", func(t *testing.T) {
		got, err := p.Reload(t.Context(), time.Now())
		if err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if !slices.Equal(pids(got.Signalled), []int{first.pid()}) {
			t.Errorf("Signalled = %v; want [%d]", pids(got.Signalled), first.pid())
		}
		waitLine(t, first.out, "SIGHUP", 1)
	})

	second := startHelper(t, helperOpts{path: bin, mode: "catch", out: filepath.Join(dir, "second")})
	waitLine(t, second.out, "ready", 1)
	writePID(t, pidFile, second.pid())
	t.Run("file re-read", func(t *testing.T) {
		got, err := p.Reload(t.Context(), time.Now())
		if err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if !slices.Equal(pids(got.Signalled), []int{second.pid()}) {
			t.Errorf("Signalled = %v; want [%d]", pids(got.Signalled), second.pid())
		}
		waitLine(t, second.out, "SIGHUP", 1)
	})

	t.Run("stale file", func(t *testing.T) {
		// The file was written a while before the process it names
		// started: the writer died and its PID went to someone else.
		old := time.Now().Add(-time.Minute)
		if err := os.Chtimes(pidFile, old, old); err != nil {
			t.Fatal(err)
		}
		before := count(second.out, "SIGHUP")
		_, err := p.Reload(t.Context(), time.Now())
		if !errors.Is(err, ErrNoTarget) || !strings.Contains(err.Error(), "stale") {
			t.Fatalf("Reload = %v; want ErrNoTarget saying the file is stale", err)
		}
		t.Logf("stale: %v", err)
		barrier(t, second.pid(), second.out)
		if n := count(second.out, "SIGHUP"); n != before {
			t.Errorf("stale target received %d SIGHUP; want %d", n, before)
		}
	})

	t.Run("exited process", func(t *testing.T) {
		exited := startHelper(t, helperOpts{path: bin, mode: "exit"})
		if err := exited.cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		writePID(t, pidFile, exited.pid())
		_, err := p.Reload(t.Context(), time.Now())
		if !errors.Is(err, ErrNoTarget) || !strings.Contains(err.Error(), "not running") {
			t.Errorf("Reload = %v; want ErrNoTarget saying the process is not running", err)
		}
	})

	t.Run("garbage", func(t *testing.T) {
		if err := os.WriteFile(pidFile, []byte("nginx\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := p.Reload(t.Context(), time.Now())
		if err == nil || errors.Is(err, ErrNoTarget) || !strings.Contains(err.Error(), `"nginx" is not a PID`) {
			t.Errorf("Reload = %v; want an error saying the content is not a PID", err)
		}
	})
}

func writePID(t *testing.T, path string, pid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDeliverSignalRefusesRecycledPID checks a start time that no longer
// matches stops delivery: the PID now names another process.
func TestDeliverSignalRefusesRecycledPID(t *testing.T) {
	h := startHelper(t, helperOpts{path: linkAs(t, t.TempDir(), uniqueName(t, "recy"), testBinary(t)), mode: "catch"})
	waitLine(t, h.out, "ready", 1)
	st, err := readStat("/proc", h.pid())
	if err != nil {
		t.Fatal(err)
	}
	err = deliverSignal("/proc", h.pid(), st.StartTicks+1, syscall.SIGHUP, nil)
	if !errors.Is(err, ErrNoTarget) || !strings.Contains(err.Error(), "another process") {
		t.Errorf("deliverSignal with a different start time = %v; want ErrNoTarget naming another process", err)
	}
	barrier(t, h.pid(), h.out)
	if n := count(h.out, "SIGHUP"); n != 0 {
		t.Errorf("received %d SIGHUP; want 0", n)
	}
	if err := deliverSignal("/proc", h.pid(), st.StartTicks, syscall.SIGHUP, nil); err != nil {
		t.Fatalf("deliverSignal with the right start time: %v", err)
	}
	waitLine(t, h.out, "SIGHUP", 1)
}

// TestDeliverSignalFallsBackToKill takes the kill(2) path, as on a kernel
// without pidfd_open (ENOSYS) or under a seccomp profile that refuses it
// (EPERM), and checks the start-time guard still holds there.
func TestDeliverSignalFallsBackToKill(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSYS, syscall.EPERM} {
		t.Run(errno.Error(), func(t *testing.T) {
			h := startHelper(t, helperOpts{path: linkAs(t, t.TempDir(), uniqueName(t, "kill"), testBinary(t)), mode: "catch"})
			waitLine(t, h.out, "ready", 1)
			st, err := readStat("/proc", h.pid())
			if err != nil {
				t.Fatal(err)
			}
			noPidfd := func(int, int) (int, error) { return -1, errno }
			err = deliverSignalWith(noPidfd, "/proc", h.pid(), st.StartTicks+1, syscall.SIGHUP, nil)
			if !errors.Is(err, ErrNoTarget) {
				t.Errorf("kill path with a different start time = %v; want ErrNoTarget", err)
			}
			barrier(t, h.pid(), h.out)
			if n := count(h.out, "SIGHUP"); n != 0 {
				t.Fatalf("received %d SIGHUP before the real delivery; want 0", n)
			}
			if err := deliverSignalWith(noPidfd, "/proc", h.pid(), st.StartTicks, syscall.SIGHUP, nil); err != nil {
				t.Fatalf("kill path: %v", err)
			}
			waitLine(t, h.out, "SIGHUP", 1)
		})
	}
}

// TestProcessReloadPermissionDenied runs the sender as one unprivileged user
// and the target as another, so the kernel really refuses with EPERM.
func TestProcessReloadPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start processes as uid 65534 and 65533; run the tests as root (CI does)")
	}
	const targetUID, senderUID = 65534, 65533
	// Both users must be able to run the test binary and write the output.
	dir, err := os.MkdirTemp("", "signaler-eperm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "signaler-helper")
	copyFile(t, testBinary(t), bin, 0o755)
	name := uniqueName(t, "perm")
	link := linkAs(t, dir, name, bin)

	target := startHelper(t, helperOpts{path: link, mode: "catch", out: filepath.Join(dir, "target"),
		cred: &syscall.Credential{Uid: targetUID, Gid: targetUID}})
	waitLine(t, target.out, "ready", 1)

	sender := exec.Command(bin)
	sender.Env = append(os.Environ(), helperModeEnv+"=send", helperNameEnv+"="+name, "GORACE=atexit_sleep_ms=0")
	sender.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: senderUID, Gid: senderUID}}
	outb, err := sender.Output()
	if err != nil {
		t.Fatalf("sender: %v", err)
	}
	got := strings.TrimSpace(string(outb))
	t.Logf("sender as uid %d said: %s", senderUID, got)
	want := "send SIGHUP to pid " + strconv.Itoa(target.pid()) + " (" + name + "): operation not permitted: " +
		"pollreload runs as uid 65533 but the process runs as uid 65534"
	if got != want+"\ninspect: "+want {
		t.Errorf("sender output:\ngot  %s\nwant %s\ninspect: %s", got, want, want)
	}
	barrier(t, target.pid(), target.out)
	if n := count(target.out, "SIGHUP"); n != 0 {
		t.Errorf("target received %d SIGHUP; want 0", n)
	}
}

func TestPermissionErrorReason(t *testing.T) {
	err := errors.Join(errors.New("other"), &PermissionError{PID: 5, Name: "app", Signal: syscall.SIGHUP, UID: 1, TargetUID: 2, Err: syscall.EPERM})
	if got := Reason(err); got != "permission" {
		t.Errorf("Reason = %q; want permission", got)
	}
	if !errors.Is(err, os.ErrPermission) {
		t.Error("errors.Is(err, os.ErrPermission) = false; want true")
	}
	unknown := (&PermissionError{PID: 5, Name: "app", Signal: syscall.SIGHUP, UID: 1, TargetUID: -1, Err: syscall.EPERM}).Error()
	// The fix (runAsUser, CAP_KILL) is the main package's to add: advice_test.go.
	want := "send SIGHUP to pid 5 (app): operation not permitted: pollreload runs as uid 1 but the process runs as an unknown uid"
	if unknown != want {
		t.Errorf("Error() with unknown target uid:\ngot  %s\nwant %s", unknown, want)
	}
}

func TestNewProcessRejects(t *testing.T) {
	tests := []struct {
		name    string
		opts    ProcessOptions
		wantErr string
	}{
		{"nothing to find", ProcessOptions{Names: []string{" ", ""}}, "no process name and no PID file; set one"},
		{"both", ProcessOptions{Names: []string{"nginx"}, PIDFile: "/run/nginx.pid"}, "not both"},
		{"bad policy", ProcessOptions{Names: []string{"nginx"}, Policy: "youngest"}, `invalid target policy "youngest"`},
		{"uncatchable signal", ProcessOptions{Names: []string{"nginx"}, Signal: syscall.SIGSTOP}, "SIGSTOP cannot be caught"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewProcess(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewProcess error = %v; want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestProcessReloadRefusesASignalIgnoredByDefault is issue 21 point 15: a
// signal whose default action is to ignore it (SIGWINCH here) reaches a
// process without a handler and does nothing. It must not count as a
// delivered reload: it is not_catching, and it is sent once the process
// installs a handler.
func TestProcessReloadRefusesASignalIgnoredByDefault(t *testing.T) {
	dir := t.TempDir()
	name := uniqueName(t, "sh")
	out, gate := filepath.Join(dir, "out"), filepath.Join(dir, "gate")
	script := strings.NewReplacer("HUP", "WINCH", "SIGHUP", "SIGWINCH").Replace(lateHandlerScript)
	h := startHelper(t, helperOpts{path: linkAs(t, dir, name, "/bin/sh"), args: []string{"-c", script, name, out, gate}, out: out})
	p, err := NewProcess(ProcessOptions{Names: []string{name}, Signal: syscall.SIGWINCH})
	if err != nil {
		t.Fatal(err)
	}

	got, err := p.Reload(t.Context(), time.Now())
	var nc *NotCatchingError
	if !errors.As(err, &nc) || nc.PID != h.pid() || nc.Action != "ignore" || len(got.Signalled) != 0 {
		t.Fatalf("Reload before the handler = %+v, %v; want a NotCatchingError (ignore) for pid %d and nothing signalled", got, err, h.pid())
	}
	if r := Reason(err); r != "not_catching" {
		t.Errorf("Reason = %q; want not_catching", r)
	}
	t.Logf("before the handler: %v", err)

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, "ready", 1)
	got, err = p.Reload(t.Context(), time.Now())
	if err != nil || !slices.Equal(pids(got.Signalled), []int{h.pid()}) {
		t.Fatalf("Reload after the handler = %+v, %v; want pid %d signalled", got, err, h.pid())
	}
	waitLine(t, out, "SIGWINCH", 1)
}
