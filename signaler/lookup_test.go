package signaler

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFindByNameMatchesEachNameSource starts one real process whose comm,
// argv[0] and executable all differ, and looks it up by each.
func TestFindByNameMatchesEachNameSource(t *testing.T) {
	dir := t.TempDir()
	exeName := uniqueName(t, "exe")
	exe := filepath.Join(dir, exeName)
	copyFile(t, testBinary(t), exe, 0o755)
	commName := uniqueName(t, "comm")
	longName := uniqueName(t, "long-command-") // 21 bytes: comm keeps 15
	argvName := uniqueName(t, "argv")

	h := startHelper(t, helperOpts{path: linkAs(t, dir, commName, exe), argv0: "/nonexistent/" + argvName, mode: "catch"})
	long := startHelper(t, helperOpts{path: linkAs(t, dir, longName, exe), argv0: "/nonexistent/" + uniqueName(t, "argv"), mode: "catch"})
	waitLine(t, h.out, "ready", 1)
	waitLine(t, long.out, "ready", 1)

	tests := []struct {
		name   string
		lookup string
		want   []int
	}{
		{"comm", commName, []int{h.pid()}},
		{"argv0 base name", argvName, []int{h.pid()}},
		{"executable base name", exeName, []int{h.pid(), long.pid()}},
		{"name longer than 15 bytes does not match on comm alone", longName, nil},
		{"first 15 bytes of a long name", longName[:15], []int{long.pid()}},
		{"long name differing within 15 bytes", "X" + longName[1:], nil},
		{"prefix of comm", commName[:len(commName)-1], nil},
		{"absolute path matches argv0", "/nonexistent/" + argvName, []int{h.pid()}},
		{"absolute path matches the executable", exe, []int{h.pid(), long.pid()}},
		{"path of the link is not the executable", filepath.Join(dir, commName), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := findByName("/proc", []string{tt.lookup}, os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range res.matches {
				got = append(got, m.PID)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("findByName(%q) = %v; want %v", tt.lookup, got, want)
			}
		})
	}
}

// TestFindByNameSkipsZombies makes a real zombie and checks it is no target.
func TestFindByNameSkipsZombies(t *testing.T) {
	name := uniqueName(t, "zomb")
	h := startHelper(t, helperOpts{path: linkAs(t, t.TempDir(), name, testBinary(t)), mode: "exit"})
	waitState(t, h.pid(), 'Z')
	res, err := findByName("/proc", []string{name}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.matches) != 0 {
		t.Errorf("findByName(%q) = %+v; want no match for zombie %d", name, res.matches, h.pid())
	}
}

// TestFindByNameSkipsSelf checks pollreload never picks itself, even when
// its own name is asked for.
func TestFindByNameSkipsSelf(t *testing.T) {
	self, err := readStat("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	res, err := findByName("/proc", []string{self.Comm}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res.matches {
		if m.PID == os.Getpid() {
			t.Errorf("findByName(%q) returned pollreload itself (pid %d)", self.Comm, m.PID)
		}
	}
}

// fakeProc is a /proc tree in a temporary directory, for cases a test cannot
// create for real (kernel threads, PID 1).
type fakeProc struct {
	t   *testing.T
	dir string
}

func newFakeProc(t *testing.T) fakeProc {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "uptime"), []byte("1000.00 900.00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return fakeProc{t: t, dir: dir}
}

// add writes a process entry.
func (f fakeProc) add(pid int, comm string, state byte, ppid int, flags uint64, cmdline string) {
	d := filepath.Join(f.dir, strconv.Itoa(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		f.t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (%s) %c %d %d %d 0 -1 %d 0 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100 0\n", pid, comm, state, ppid, pid, pid, flags, 1000+pid)
	status := "Name:\t" + comm + "\nUid:\t1000\t1000\t1000\t1000\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000000001\n"
	for name, content := range map[string]string{"stat": stat, "status": status, "cmdline": cmdline} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

func TestFindByNameExclusions(t *testing.T) {
	const self = 4242
	tests := []struct {
		name     string
		add      func(fakeProc)
		lookup   string
		want     []int
		wantPID1 bool
	}{
		{"plain process", func(f fakeProc) { f.add(100, "app", 'S', 50, 0, "app\x00-c\x00") }, "app", []int{100}, false},
		{"name with spaces and parens", func(f fakeProc) { f.add(101, "my) (app", 'S', 50, 0, "x\x00") }, "my) (app", []int{101}, false},
		{"PID 1", func(f fakeProc) { f.add(1, "app", 'S', 0, 0, "app\x00") }, "app", nil, true},
		{"pollreload itself", func(f fakeProc) { f.add(self, "app", 'S', 1, 0, "app\x00") }, "app", nil, false},
		{"zombie", func(f fakeProc) { f.add(102, "app", 'Z', 50, 0, "") }, "app", nil, false},
		{"dead", func(f fakeProc) { f.add(103, "app", 'X', 50, 0, "") }, "app", nil, false},
		{"kernel thread flag", func(f fakeProc) { f.add(104, "app", 'S', 2, pfKthread, "") }, "app", nil, false},
		{"kernel thread by empty cmdline and ppid 2", func(f fakeProc) { f.add(105, "app", 'I', 2, 0, "") }, "app", nil, false},
		{"empty cmdline with another parent", func(f fakeProc) { f.add(106, "app", 'S', 50, 0, "") }, "app", []int{106}, false},
		{"argv0 base name", func(f fakeProc) { f.add(107, "python3", 'S', 50, 0, "/usr/local/bin/app\x00x\x00") }, "app", []int{107}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeProc(t)
			tt.add(f)
			res, err := findByName(f.dir, []string{tt.lookup}, self)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range res.matches {
				got = append(got, m.PID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("matches = %v; want %v", got, tt.want)
			}
			if res.pid1 != tt.wantPID1 {
				t.Errorf("pid1 = %v; want %v", res.pid1, tt.wantPID1)
			}
		})
	}
}

// TestNoTargetErrorSaysWhatWasFound: the error is a *NoTargetError naming
// the names and what matched; the variable and the pod-spec fix are the main
// package's to add (config/fix.go, TestFixNoTarget), so no PROCESS_NAME or
// shareProcessNamespace is spelt here.
func TestNoTargetErrorSaysWhatWasFound(t *testing.T) {
	f := newFakeProc(t)
	f.add(1, "app", 'S', 0, 0, "app\x00")
	tests := []struct {
		name     string
		names    []string
		wantPID1 bool
		want     string
	}{
		{"nothing matches", []string{"nginx"}, false, "no matching process: no process in " + f.dir + " is named nginx (by comm, argv[0] or executable)"},
		{"only PID 1 matches", []string{"app"}, true, "no matching process: app matches only PID 1, which pollreload never signals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewProcess(ProcessOptions{Names: tt.names, ProcDir: f.dir})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Reload(t.Context(), time.Now())
			if !errors.Is(err, ErrNoTarget) {
				t.Fatalf("Reload error = %v; want ErrNoTarget", err)
			}
			var nt *NoTargetError
			if !errors.As(err, &nt) || nt.PID1 != tt.wantPID1 || !slices.Equal(nt.Names, tt.names) || nt.ProcDir != f.dir {
				t.Errorf("error %#v; want a *NoTargetError for %v, PID1 %v", err, tt.names, tt.wantPID1)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error %q; want %q", got, tt.want)
			}
			if got := Reason(err); got != "no_target" {
				t.Errorf("Reason = %q; want no_target", got)
			}
		})
	}
}

func TestSelectTargets(t *testing.T) {
	// Two trees: 10 is a master with workers 11 and 12 (12 started first of
	// all workers, but after 10); 20 is a lone process started later; 13 is a
	// grandchild through 11.
	matches := []process{
		{PID: 11, PPID: 10, StartTicks: 105},
		{PID: 10, PPID: 1, StartTicks: 100},
		{PID: 12, PPID: 10, StartTicks: 101},
		{PID: 20, PPID: 1, StartTicks: 200},
		{PID: 13, PPID: 11, StartTicks: 106},
	}
	tests := []struct {
		policy Policy
		want   []int
	}{
		{PolicyRoots, []int{10, 20}},
		{PolicyAll, []int{10, 11, 12, 13, 20}},
		{PolicyOldest, []int{10}},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			var got []int
			for _, p := range selectTargets(matches, tt.policy) {
				got = append(got, p.PID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("selectTargets(%s) = %v; want %v", tt.policy, got, tt.want)
			}
		})
	}
	t.Run("oldest tie goes to lowest PID", func(t *testing.T) {
		got := selectTargets([]process{{PID: 9, StartTicks: 5}, {PID: 7, StartTicks: 5}}, PolicyOldest)
		if len(got) != 1 || got[0].PID != 7 {
			t.Errorf("selectTargets = %+v; want pid 7", got)
		}
	})
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    Policy
		wantErr bool
	}{
		{"", PolicyRoots, false},
		{"roots", PolicyRoots, false},
		{"ALL", PolicyAll, false},
		{" oldest ", PolicyOldest, false},
		{"newest", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePolicy(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParsePolicy(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "roots, all or oldest") {
				t.Errorf("error %q does not list the accepted policies", err)
			}
		})
	}
}

// waitState waits until pid reaches state.
func waitState(t *testing.T, pid int, state byte) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		st, err := readStat("/proc", pid)
		if err == nil && st.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: waited %s for state %c; have %+v, %v", pid, waitFor, state, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkFindByName measures one /proc scan, the cost of each reload
// attempt by name; ns/op scales with the number of processes visible.
func BenchmarkFindByName(b *testing.B) {
	pids, err := listPIDs("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := findByName("/proc", []string{"no-such-process"}, os.Getpid()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(pids)), "procs")
}
