package faults

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// Timeouts of WaitFor calls: limits for a slow, loaded CI machine running a
// -race build, never speed assertions.
const (
	waitLong  = 60 * time.Second
	waitShort = 20 * time.Second
)

// quietScans is how many further finished scans a test lets pass before it
// concludes that something did not happen (a reload that must not come).
// With SETTLE_TIME below two intervals, a reload the daemon wanted to send
// would be sent within this many scans.
const quietScans = 6

// rig is one pollreload daemon watching one root, with a real process that
// counts the reload signals it receives.
type rig struct {
	t      *testing.T
	pr     *testenv.Pollreload
	target *testenv.Target
	// seen is the number of signals the target had when the test last
	// checked them.
	seen int
}

// signals returns how many reload signals the target has received.
func (r *rig) signals() int {
	r.t.Helper()
	return len(r.target.Reloads(r.t))
}

// startRig starts a signal-counting target and pollreload over root. env
// adds to or overrides the defaults: a 100ms poll interval, a 150ms settle
// time and debug logs (which a failing test prints).
func startRig(t *testing.T, root string, env map[string]string) *rig {
	t.Helper()
	// The target reads a directory of its own: it only counts signals, and
	// must not meet the faults meant for pollreload.
	target := testenv.StartTarget(t, "reloadtarget", t.TempDir())
	pidFile := filepath.Join(t.TempDir(), "target.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(target.PID())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{
		"CONFIG_DIR":          root,
		"PID_FILE":            pidFile,
		"POLL_INTERVAL":       "100ms",
		"SETTLE_TIME":         "150ms",
		"HEALTH_MISSED_SCANS": "3",
		"LOG_LEVEL":           "debug",
	}
	for k, v := range env {
		cfg[k] = v
	}
	return &rig{t: t, pr: testenv.Start(t, cfg), target: target}
}

// metric returns the daemon's metric name summed over the series whose
// labels include labels.
func (r *rig) metric(name string, labels map[string]string) float64 {
	r.t.Helper()
	return r.pr.Metric(r.t, name, labels)
}

// scans returns pollreload_scans_total over every result.
func (r *rig) scans() float64 {
	r.t.Helper()
	return r.metric("pollreload_scans_total", nil)
}

// failedScans returns pollreload_scans_total with result partial or error.
func (r *rig) failedScans() float64 {
	r.t.Helper()
	return r.metric("pollreload_scans_total", map[string]string{"result": "partial"}) +
		r.metric("pollreload_scans_total", map[string]string{"result": "error"})
}

// waitMetric waits until metric name{labels} reaches at least want.
func (r *rig) waitMetric(name string, labels map[string]string, want float64) {
	r.t.Helper()
	testenv.WaitFor(r.t, waitLong, func() error {
		if got := r.metric(name, labels); got < want {
			return fmt.Errorf("%s%v = %v; want >= %v", name, labels, got, want)
		}
		return nil
	})
}

// waitErrors waits until pollreload_scan_errors_total{labels} reaches
// want, which the caller computed before injecting a fault. A signal newer
// than the test's last check ends the wait early: it is already the failure
// the caller checks for next with wantReloads. A timeout is reported with
// t.Errorf, not Fatal, so that the test goes on to show what the daemon did
// instead.
func (r *rig) waitErrors(labels map[string]string, want float64, when string) {
	r.t.Helper()
	err := testenv.Poll(waitShort, func() error {
		if r.signals() > r.seen {
			return nil
		}
		if got := r.metric("pollreload_scan_errors_total", labels); got < want {
			return fmt.Errorf("pollreload_scan_errors_total%v = %v; want >= %v", labels, got, want)
		}
		return nil
	})
	if err != nil {
		r.t.Errorf("%s: %v", when, err)
	}
}

// waitScans waits for n more finished scans with the given result ("" for
// any result).
func (r *rig) waitScans(result string, n int) {
	r.t.Helper()
	var labels map[string]string
	if result != "" {
		labels = map[string]string{"result": result}
	}
	r.waitMetric("pollreload_scans_total", labels, r.metric("pollreload_scans_total", labels)+float64(n))
}

// wantReloads checks that the target has received exactly want signals and
// that pollreload counted exactly want successful reloads.
func (r *rig) wantReloads(when string, want int) {
	r.t.Helper()
	got := r.signals()
	r.seen = got
	if got != want {
		r.t.Errorf("%s: target received %d signals; want %d", when, got, want)
	}
	// A reload counts once verified (the target still runs after a grace),
	// a moment after the signal: wait for the count, then require it exact.
	success := map[string]string{"result": "success"}
	_ = testenv.Poll(waitShort, func() error {
		if got := r.metric("pollreload_reloads_total", success); got < float64(want) {
			return fmt.Errorf("%v", got)
		}
		return nil
	})
	if got := r.metric("pollreload_reloads_total", success); got != float64(want) {
		r.t.Errorf("%s: pollreload_reloads_total{result=success} = %v; want %d", when, got, want)
	}
}

// waitReloads waits until the target has received want signals, then lets
// quietScans scans pass and checks that no further signal came.
func (r *rig) waitReloads(when string, want int) {
	r.t.Helper()
	r.waitReloadsWithin(waitShort, quietScans, when, want)
}

// waitReloadsWithin is waitReloads with a timeout and a number of quiet
// scans of its own, for trees so large that the daemon stretches its
// interval.
func (r *rig) waitReloadsWithin(timeout time.Duration, quiet int, when string, want int) {
	r.t.Helper()
	testenv.WaitFor(r.t, timeout, func() error {
		if got := r.signals(); got < want {
			return fmt.Errorf("%s: target received %d signals; want %d", when, got, want)
		}
		return nil
	})
	r.waitScans("", quiet)
	r.wantReloads(when, want)
}

// healthz returns the status code of GET /healthz.
func (r *rig) healthz() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.pr.MetricsAddr+"/healthz", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitHealthz waits until /healthz answers with status want.
func (r *rig) waitHealthz(want int) {
	r.t.Helper()
	testenv.WaitFor(r.t, waitShort, func() error {
		got, err := r.healthz()
		if err != nil {
			return fmt.Errorf("GET /healthz: %w", err)
		}
		if got != want {
			return fmt.Errorf("GET /healthz: status %d; want %d", got, want)
		}
		return nil
	})
}

// cpuTime returns the user plus system CPU time pid has used, all threads
// (exited ones included) counted, from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	// comm (field 2) may hold spaces and parentheses: count fields after the
	// last ')'. utime and stime are fields 14 and 15, in clock ticks.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("read cpu time: short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read cpu time: %w", err)
		}
		ticks += n
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// statusKB returns a "kB" field of /proc/PID/status, such as VmHWM.
func statusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", field, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", field, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("read %s: not in /proc/%d/status", field, pid)
}

// scratchDir returns a new directory on tmpfs (/dev/shm) when there is one,
// else in the test's temporary directory. Creating 100,000 files there takes
// seconds instead of a minute on a busy disk, and reading a hole of a sparse
// tmpfs file costs no page allocation. It is removed at cleanup.
func scratchDir(t *testing.T) string {
	t.Helper()
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != tmpfsMagic {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "pollreload-faults-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove scratch dir: %v", err)
		}
	})
	return dir
}

// scanDuration returns the mean duration of the daemon's scans so far.
func (r *rig) scanDuration() time.Duration {
	r.t.Helper()
	sum := r.metric("pollreload_scan_duration_seconds_sum", nil)
	n := r.metric("pollreload_scan_duration_seconds_count", nil)
	if n == 0 {
		return 0
	}
	return time.Duration(sum / n * float64(time.Second))
}

// writeFiles writes files (slash-separated relative path to content) under
// dir, creating directories as needed.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
