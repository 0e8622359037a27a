package signaler

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLongNamesMatchInFull starts real processes whose names share their
// first 15 bytes, so the kernel gives them all the same comm, and checks
// that a long PROCESS_NAME finds and signals only the process of that full
// name: by the executable's base name (a copy of the binary under that
// name) or by argv[0] (exec -a).
func TestLongNamesMatchInFull(t *testing.T) {
	dir := t.TempDir()
	base := uniqueName(t, "lng") // 11 bytes
	server, sidecar, worker := base+"-application-server", base+"-application-sidecar", base+"-application-worker"
	for _, n := range []string{server, sidecar} {
		copyFile(t, testBinary(t), filepath.Join(dir, n), 0o755)
	}
	plain := uniqueName(t, "plain")
	copyFile(t, testBinary(t), filepath.Join(dir, plain), 0o755)

	srv := startHelper(t, helperOpts{path: filepath.Join(dir, server), mode: "catch"})
	side := startHelper(t, helperOpts{path: filepath.Join(dir, sidecar), mode: "catch"})
	// exec -a: argv[0] is the long name, comm and exe are plain's.
	work := startHelper(t, helperOpts{path: filepath.Join(dir, plain), argv0: worker, mode: "catch"})
	for _, h := range []*helper{srv, side, work} {
		waitLine(t, h.out, "ready", 1)
	}
	comm := base + "-app"
	for _, h := range []*helper{srv, side} {
		if st, err := readStat("/proc", h.pid()); err != nil || st.Comm != comm {
			t.Fatalf("pid %d comm = %q, %v; want %q (the kernel's cut)", h.pid(), st.Comm, err, comm)
		}
	}

	tests := []struct {
		lookup string
		want   []int
	}{
		{server, []int{srv.pid()}},
		{sidecar, []int{side.pid()}},
		{worker, []int{work.pid()}},
		{comm, []int{srv.pid(), side.pid()}},           // 15 bytes: comm may match
		{base + "-application", nil},                   // a longer prefix is no name
		{base + "-application-serverX", nil},           // nor a longer name
		{filepath.Join(dir, server), []int{srv.pid()}}, // a path: the executable's
	}
	for _, tt := range tests {
		res, err := findByName("/proc", []string{tt.lookup}, os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, m := range res.matches {
			got = append(got, m.PID)
		}
		slices.Sort(got)
		if want := slices.Sorted(slices.Values(tt.want)); !slices.Equal(got, want) {
			t.Errorf("findByName(%q) = %v; want %v", tt.lookup, got, want)
		}
	}

	p, err := NewProcess(ProcessOptions{Names: []string{server}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Reload(t.Context(), time.Now())
	if err != nil || !slices.Equal(pids(out.Signalled), []int{srv.pid()}) {
		t.Fatalf("Reload(%s) = %+v, %v; want only pid %d signalled", server, out, err, srv.pid())
	}
	waitLine(t, srv.out, "SIGHUP", 1)
	for _, h := range []*helper{side, work} {
		barrier(t, h.pid(), h.out)
		if n := count(h.out, "SIGHUP"); n != 0 {
			t.Errorf("pid %d (%s) got %d SIGHUP meant for %s", h.pid(), h.cmd.Args[0], n, server)
		}
	}
	t.Logf("PROCESS_NAME=%s signalled %v; %s (pid %d, comm %q too) and argv0 %s (pid %d) got nothing",
		server, pids(out.Signalled), sidecar, side.pid(), comm, worker, work.pid())
}

// TestNamesWithSlash checks that a PROCESS_NAME holding a slash is a path:
// an absolute one matches argv[0] or the executable's full path exactly, and
// a relative one is refused up front instead of matching nothing forever.
func TestNamesWithSlash(t *testing.T) {
	for _, n := range []string{"bin/app", "./app", "app/"} {
		_, err := NewProcess(ProcessOptions{Names: []string{n}})
		if err == nil || !strings.Contains(err.Error(), `"`+n+`" holds a / but is not an absolute path`) {
			t.Errorf("NewProcess(%q) = %v; want an error saying the path must be absolute", n, err)
		}
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, uniqueName(t, "slash"))
	copyFile(t, testBinary(t), exe, 0o755)
	h := startHelper(t, helperOpts{path: exe, mode: "catch"})
	waitLine(t, h.out, "ready", 1)
	// An uncleaned spelling of the same path is the same path.
	p, err := NewProcess(ProcessOptions{Names: []string{dir + "//" + filepath.Base(exe)}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Reload(t.Context(), time.Now())
	if err != nil || !slices.Equal(pids(out.Signalled), []int{h.pid()}) {
		t.Fatalf("Reload by path = %+v, %v; want pid %d signalled", out, err, h.pid())
	}
	waitLine(t, h.out, "SIGHUP", 1)
	// Another directory holding the same base name is another program.
	p, err = NewProcess(ProcessOptions{Names: []string{"/usr/bin/" + filepath.Base(exe)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Reload(t.Context(), time.Now()); !errors.Is(err, ErrNoTarget) {
		t.Errorf("Reload of /usr/bin/%s = %v; want ErrNoTarget", filepath.Base(exe), err)
	}
}

// TestZombieTargetIsReported makes real zombies (children the test does not
// reap yet) and checks the reload error says so, by name and by PID file,
// instead of claiming that no such process exists.
func TestZombieTargetIsReported(t *testing.T) {
	dir := t.TempDir()
	name := uniqueName(t, "zomb")
	z := startHelper(t, helperOpts{path: linkAs(t, dir, name, testBinary(t)), mode: "exit"})
	waitState(t, z.pid(), 'Z')

	byName, err := NewProcess(ProcessOptions{Names: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "app.pid")
	writePID(t, pidFile, z.pid())
	// The PID file was written after the process started: not stale.
	byFile, err := NewProcess(ProcessOptions{PIDFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	for what, p := range map[string]*Process{"PROCESS_NAME": byName, "PID_FILE": byFile} {
		_, err := p.Reload(t.Context(), time.Now())
		if !errors.Is(err, ErrNoTarget) || !strings.Contains(err.Error(), "zombie") || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", z.pid())) {
			t.Errorf("%s: Reload = %v; want ErrNoTarget naming zombie pid %d", what, err, z.pid())
		}
		t.Logf("%s: %v", what, err)
		if _, ierr := p.Inspect(); ierr == nil || ierr.Error() != err.Error() {
			t.Errorf("%s: Inspect = %v; want the same error as Reload", what, ierr)
		}
	}
}
