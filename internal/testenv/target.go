package testenv

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The reload target is the test binary itself, re-executed in helper mode.
const (
	helperReloadTarget = "reloadtarget"
	targetDirEnv       = "TESTENV_TARGET_DIR"
	targetLogEnv       = "TESTENV_TARGET_LOG"
)

// TargetRecord is one line of a reload target's log: what it read from its
// configuration directory at start or on a SIGHUP.
type TargetRecord struct {
	// Event is "start" or "reload".
	Event string `json:"event"`
	// Seq counts records from 0 (the start record).
	Seq int `json:"seq"`
	// Start and End are the wall-clock times (Unix nanoseconds) around the
	// read, so a test can tell which writes overlapped it.
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	// DataBefore and DataAfter are where `..data` pointed before and after
	// the read ("" for a plain directory). Different values mean a kubelet
	// swap happened during the read.
	DataBefore string `json:"data_before,omitempty"`
	DataAfter  string `json:"data_after,omitempty"`
	// Files maps each path the application sees (top-level names not
	// starting with "..", followed through links) to its content.
	Files map[string]string `json:"files"`
	// Errors lists what could not be read (a dangling link mid-swap).
	Errors []string `json:"errors,omitempty"`
}

// Target is a small application that reads its configuration directory
// through the visible names, as an application does, at start and on every
// SIGHUP, and logs each read as a TargetRecord. Its process name (comm and
// argv[0]) is the name given to StartTarget, so pollreload can find it with
// PROCESS_NAME.
type Target struct {
	*Process
	Dir string
	Log string
}

// UniqueName returns prefix followed by a random suffix, at most 15 bytes
// in all (the kernel's comm limit). pollreload finds processes by name across
// the whole machine, so a test run that uses a fixed name would also signal
// the targets of another run going on at the same time.
func UniqueName(prefix string) string {
	const suffix = 6
	if max := 15 - 1 - suffix; len(prefix) > max {
		prefix = prefix[:max]
	}
	return fmt.Sprintf("%s-%0*x", prefix, suffix, rand.Uint32()&0xffffff)
}

// StartTarget starts a reload target called name (at most 15 bytes, the
// kernel's comm limit) that reads dir, and waits until it has read dir once
// and is ready for signals. The test package must run testenv.Main.
func StartTarget(t testing.TB, name, dir string) *Target {
	t.Helper()
	if len(name) > 15 || strings.ContainsRune(name, '/') {
		t.Fatalf("target name %q: want a base name of at most 15 bytes", name)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("find test binary: %v", err)
	}
	work := t.TempDir()
	// Executing through a link called name makes name the process's comm
	// and argv[0], while the executable stays the test binary.
	link := filepath.Join(work, name)
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	tg := &Target{Dir: dir, Log: filepath.Join(work, "reloads.jsonl")}
	cmd := exec.Command(link)
	cmd.Env = append(baseEnv(), helperEnv+"="+helperReloadTarget, targetDirEnv+"="+dir, targetLogEnv+"="+tg.Log)
	tg.Process = Spawn(t, name, cmd)
	WaitFor(t, 30*time.Second, func() error {
		if tg.Exited() {
			t.Fatalf("target %s exited at start (%v):\n%s", name, tg.Wait(0), tg.Output())
		}
		if recs, err := tg.records(); err != nil || len(recs) == 0 {
			return fmt.Errorf("target %s has not logged its start (err %v)", name, err)
		}
		return nil
	})
	return tg
}

// Records returns every record the target has logged so far.
func (tg *Target) Records(t testing.TB) []TargetRecord {
	t.Helper()
	recs, err := tg.records()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// Reloads returns the records logged on SIGHUP.
func (tg *Target) Reloads(t testing.TB) []TargetRecord {
	t.Helper()
	var out []TargetRecord
	for _, r := range tg.Records(t) {
		if r.Event == "reload" {
			out = append(out, r)
		}
	}
	return out
}

// Last returns the latest record: what the application runs with now.
func (tg *Target) Last(t testing.TB) TargetRecord {
	t.Helper()
	recs := tg.Records(t)
	return recs[len(recs)-1]
}

func (tg *Target) records() ([]TargetRecord, error) {
	f, err := os.Open(tg.Log)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open target log: %w", err)
	}
	defer f.Close()
	var recs []TargetRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r TargetRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			// A line being appended right now is incomplete; it is read
			// whole next time.
			break
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// runHelper runs the helper process called name in place of the tests.
func runHelper(name string) int {
	switch name {
	case helperReloadTarget:
		if err := runReloadTarget(os.Getenv(targetDirEnv), os.Getenv(targetLogEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "reloadtarget:", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(os.Stderr, "testenv: unknown helper %q\n", name)
		return 2
	}
}

// runReloadTarget is the target's main loop: read dir at start and on every
// SIGHUP, until SIGTERM.
func runReloadTarget(dir, logPath string) error {
	if dir == "" || logPath == "" {
		return fmt.Errorf("%s and %s must be set", targetDirEnv, targetLogEnv)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	// Subscribe before the start record: once a test sees that record, a
	// SIGHUP is a reload, never the default action (exit).
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	write := func(r TargetRecord) error {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		// One write per record: O_APPEND keeps lines whole for readers.
		_, err = logf.Write(append(line, '\n'))
		return err
	}
	rec := readConfig(dir)
	rec.Event = "start"
	if err := write(rec); err != nil {
		return err
	}
	for seq := 1; ; seq++ {
		if sig := <-sigs; sig != syscall.SIGHUP {
			return nil
		}
		rec := readConfig(dir)
		rec.Event, rec.Seq = "reload", seq
		if err := write(rec); err != nil {
			return err
		}
	}
}

// readConfig reads every file the application can see in dir.
func readConfig(dir string) TargetRecord {
	r := TargetRecord{Files: map[string]string{}, Start: time.Now().UnixNano()}
	r.DataBefore, _ = os.Readlink(filepath.Join(dir, DataLink))
	entries, err := os.ReadDir(dir)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		readTree(filepath.Join(dir, e.Name()), e.Name(), &r)
	}
	r.DataAfter, _ = os.Readlink(filepath.Join(dir, DataLink))
	r.End = time.Now().UnixNano()
	sort.Strings(r.Errors)
	return r
}

// readTree reads path (following links, as open(2) does) into r under rel.
func readTree(path, rel string, r *TargetRecord) {
	fi, err := os.Stat(path)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return
	}
	if !fi.IsDir() {
		b, err := os.ReadFile(path)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			return
		}
		r.Files[rel] = string(b)
		return
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return
	}
	for _, e := range entries {
		readTree(filepath.Join(path, e.Name()), rel+"/"+e.Name(), r)
	}
}
