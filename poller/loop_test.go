package poller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/metrics"
	"github.com/pollreload/pollreload/signaler"
)

// recorder is a Reloader that records calls; fail, when set, decides the
// result of each call.
type recorder struct {
	mu    sync.Mutex
	calls []time.Time
	fail  func(n int) error
}

func (r *recorder) Reload(_ context.Context, changedAt time.Time) (signaler.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, changedAt)
	if r.fail != nil {
		if err := r.fail(len(r.calls)); err != nil {
			return signaler.Outcome{}, err
		}
	}
	return signaler.Outcome{Signalled: []signaler.Target{{PID: 42, Name: "app"}}}, nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

type harness struct {
	t      *testing.T
	reg    *prometheus.Registry
	loop   *Loop
	rec    *recorder
	m      *metrics.Metrics
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, rec: &recorder{}, done: make(chan error, 1)}
	if opts.Reloader == nil && len(opts.Targets) == 0 {
		opts.Reloader = h.rec
	} else if r, ok := opts.Reloader.(*recorder); ok {
		h.rec = r
	}
	if opts.Scanner == nil {
		opts.Scanner = hasher.New(hasher.Options{})
	}
	if opts.Interval == 0 {
		opts.Interval = 40 * time.Millisecond
	}
	h.reg = prometheus.NewRegistry()
	h.m = metrics.New(h.reg, metrics.BuildInfo{})
	opts.Metrics = h.m
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.loop = l
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- l.Run(ctx) }()
	t.Cleanup(h.stop)
	h.waitFor("baseline", func() bool { return l.Ready() == nil })
	return h
}

// value returns the metric name with the given label pair (if any) from
// the loop's registry, 0 when absent.
func (h *harness) value(name string, label ...string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(label) == 2 && !hasLabel(m.GetLabel(), label[0], label[1]) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

func hasLabel(pairs []*dto.LabelPair, name, value string) bool {
	for _, p := range pairs {
		if p.GetName() == name && p.GetValue() == value {
			return true
		}
	}
	return false
}

func (h *harness) stop() {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run() = %v; want nil", err)
		}
		h.done <- nil // let a second stop return
	case <-time.After(2 * time.Second):
		h.t.Error("Run did not return after cancel")
	}
}

// waitFor polls cond; the timeout only bounds a broken test.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scans waits until n more scans have finished.
func (h *harness) scans(n int) {
	h.t.Helper()
	total := func() float64 {
		return h.value("pollreload_scans_total", "result", metrics.ScanOK) +
			h.value("pollreload_scans_total", "result", metrics.ScanPartial) +
			h.value("pollreload_scans_total", "result", metrics.ScanError)
	}
	target := total() + float64(n)
	h.waitFor(fmt.Sprintf("%d scans", n), func() bool { return total() >= target })
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNoReloadAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.conf"), "a")
	h := start(t, Options{Roots: []string{dir}})
	h.scans(5)
	if got := h.rec.count(); got != 0 {
		t.Errorf("reloads after 5 unchanged scans = %d; want 0", got)
	}
}

func TestReloadOnStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.conf"), "a")
	h := start(t, Options{Roots: []string{dir}, ReloadOnStart: true})
	h.waitFor("the start reload", func() bool { return h.rec.count() == 1 })
	h.scans(5)
	if got := h.rec.count(); got != 1 {
		t.Errorf("reloads = %d; want exactly 1", got)
	}
}

func TestPlainChangeSettles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "a.conf")
	write(t, conf, "v1")
	settle := 400 * time.Millisecond
	h := start(t, Options{Roots: []string{dir}, Settle: settle})
	write(t, conf, "v2")
	changed := time.Now()
	h.waitFor("the reload", func() bool { return h.rec.count() == 1 })
	if d := time.Since(changed); d < settle {
		t.Errorf("reload %v after the change; want at least SETTLE_TIME %v", d, settle)
	}
	if got := h.value("pollreload_changes_total"); got != 1 {
		t.Errorf("changes_total = %v; want 1", got)
	}
	h.scans(5)
	if got := h.rec.count(); got != 1 {
		t.Errorf("reloads = %d; want 1", got)
	}
	if got := h.value("pollreload_reload_pending"); got != 0 {
		t.Errorf("reload_pending = %v; want 0", got)
	}
	if got := h.value("pollreload_reloads_total", "result", "success"); got != 1 {
		t.Errorf(`reloads_total{result="success"} = %v; want 1`, got)
	}
}

func TestChangeAndBackWithinSettleDeliversNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "a.conf")
	write(t, conf, "A")
	h := start(t, Options{Roots: []string{dir}, Settle: time.Hour})
	write(t, conf, "B")
	h.scans(3)
	write(t, conf, "A")
	h.scans(3)
	if got := h.rec.count(); got != 0 {
		t.Errorf("reloads after A→B→A = %d; want 0", got)
	}
	if got := h.value("pollreload_changes_total"); got != 0 {
		t.Errorf("changes_total = %v; want 0", got)
	}
}

func TestSameBytesAndTouchAreNoChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "a.conf")
	write(t, conf, "same")
	h := start(t, Options{Roots: []string{dir}})
	write(t, conf, "same")
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(conf, later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(conf, 0o600); err != nil {
		t.Fatal(err)
	}
	h.scans(5)
	if got := h.rec.count(); got != 0 {
		t.Errorf("reloads = %d; want 0", got)
	}
}

// kubeletUpdate replays kubelet's AtomicWriter order.
func kubeletUpdate(t *testing.T, dir string, version int, files map[string]string) {
	t.Helper()
	ts := filepath.Join(dir, fmt.Sprintf("..2026_11_22_01_00_00.%d", version))
	for name, content := range files {
		write(t, filepath.Join(ts, name), content)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKubeletSwapNeedsNoSettling(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeletUpdate(t, dir, 1, map[string]string{"app.conf": "v1"})
	// A settle time this long would stop any plain-tree reload.
	h := start(t, Options{Roots: []string{dir}, Settle: time.Hour})
	kubeletUpdate(t, dir, 2, map[string]string{"app.conf": "v1"})
	h.scans(3)
	if got := h.rec.count(); got != 0 {
		t.Fatalf("reloads after an identical-content swap = %d; want 0", got)
	}
	kubeletUpdate(t, dir, 3, map[string]string{"app.conf": "v2"})
	h.waitFor("the reload", func() bool { return h.rec.count() == 1 })
}

func TestPendingUntilDelivered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "a.conf")
	write(t, conf, "v1")
	var mu sync.Mutex
	targetUp := false
	rec := &recorder{fail: func(int) error {
		mu.Lock()
		defer mu.Unlock()
		if !targetUp {
			return fmt.Errorf("find app: %w", signaler.ErrNoTarget)
		}
		return nil
	}}
	h := start(t, Options{Roots: []string{dir}, Reloader: rec})
	write(t, conf, "v2")
	h.waitFor("a failed attempt", func() bool { return h.rec.count() >= 1 })
	if got := h.value("pollreload_reload_pending"); got != 1 {
		t.Errorf("reload_pending = %v; want 1 while no target exists", got)
	}
	if got := h.value("pollreload_reloads_total", "result", "no_target"); got < 1 {
		t.Errorf(`reloads_total{result="no_target"} = %v; want at least 1`, got)
	}
	mu.Lock()
	targetUp = true
	mu.Unlock()
	h.waitFor("delivery", func() bool { return h.value("pollreload_reload_pending") == 0 })
	if got := h.value("pollreload_reloads_total", "result", "success"); got != 1 {
		t.Errorf(`reloads_total{result="success"} = %v; want 1`, got)
	}
	n := h.rec.count()
	h.scans(5)
	if got := h.rec.count(); got != n {
		t.Errorf("reload calls went from %d to %d after delivery; want no more", n, got)
	}
}

func TestNewerChangeSupersedesPending(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "a.conf")
	write(t, conf, "v1")
	var mu sync.Mutex
	up := false
	rec := &recorder{fail: func(int) error {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			return signaler.ErrNoTarget
		}
		return nil
	}}
	h := start(t, Options{Roots: []string{dir}, Reloader: rec})
	write(t, conf, "v2")
	h.waitFor("v2 pending", func() bool { return h.value("pollreload_changes_total") == 1 })
	write(t, conf, "v3")
	h.waitFor("v3 pending", func() bool { return h.value("pollreload_changes_total") == 2 })
	mu.Lock()
	up = true
	mu.Unlock()
	h.waitFor("delivery", func() bool { return h.value("pollreload_reload_pending") == 0 })
	h.scans(3)
	if got := h.value("pollreload_reloads_total", "result", "success"); got != 1 {
		t.Errorf(`reloads_total{result="success"} = %v; want 1 (v3 supersedes v2)`, got)
	}
}

func TestVanishedRootIsNotADeletion(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "conf")
	write(t, filepath.Join(dir, "a.conf"), "v1")
	h := start(t, Options{Roots: []string{dir}})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	h.waitFor("a failed scan", func() bool { return h.value("pollreload_scans_total", "result", metrics.ScanError) >= 2 })
	if got := h.value("pollreload_scan_errors_total", "kind", "not_found"); got < 1 {
		t.Errorf(`scan_errors_total{kind="not_found"} = %v; want at least 1`, got)
	}
	// Back with the same content: nothing to do.
	write(t, filepath.Join(dir, "a.conf"), "v1")
	h.waitFor("recovery", func() bool { return h.value("pollreload_watched_files") == 1 && h.loop.Healthy() == nil })
	h.scans(2)
	if got := h.rec.count(); got != 0 {
		t.Fatalf("reloads after the root came back unchanged = %d; want 0", got)
	}
	write(t, filepath.Join(dir, "a.conf"), "v2")
	h.waitFor("the reload", func() bool { return h.rec.count() == 1 })
}

// hangingScanner blocks every scan after the first until released, as a read
// on a dead mount does.
type hangingScanner struct {
	inner   Scanner
	mu      sync.Mutex
	n       int
	release chan struct{}
}

func (s *hangingScanner) Scan(ctx context.Context, root string) (*hasher.Snapshot, error) {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	if n > 1 {
		<-s.release
	}
	return s.inner.Scan(ctx, root)
}

func TestHungScanFailsHealthButNotShutdown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.conf"), "v1")
	sc := &hangingScanner{inner: hasher.New(hasher.Options{}), release: make(chan struct{})}
	defer close(sc.release)
	h := start(t, Options{Roots: []string{dir}, Scanner: sc, MaxMissed: 2})
	if err := h.loop.Healthy(); err != nil {
		t.Fatalf("Healthy() = %v right after the baseline; want nil", err)
	}
	h.waitFor("missed scans", func() bool { return h.value("pollreload_missed_scans_total") >= 3 })
	err := h.loop.Healthy()
	if err == nil {
		t.Fatal("Healthy() = nil while a scan hangs; want an error")
	}
	t.Logf("Healthy() = %v", err)
	start := time.Now()
	h.stop()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Run took %v to return with a hung scan; want under 1s", d)
	}
}

func TestSlowScansStretchTheInterval(t *testing.T) {
	t.Parallel()
	// An empty root: every scan is stat-only, so each counts towards the
	// steady cost (scans that read content are one-offs; schedule_test.go
	// shows they stretch nothing).
	dir := t.TempDir()
	slow := &slowScanner{inner: hasher.New(hasher.Options{}), delay: 80 * time.Millisecond}
	h := start(t, Options{Roots: []string{dir}, Scanner: slow, Interval: 100 * time.Millisecond})
	h.waitFor("a stretched interval", func() bool { return h.value("pollreload_poll_interval_seconds") >= 0.3 })
}

type slowScanner struct {
	inner Scanner
	delay time.Duration
}

func (s *slowScanner) Scan(ctx context.Context, root string) (*hasher.Snapshot, error) {
	time.Sleep(s.delay)
	return s.inner.Scan(ctx, root)
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	sc := hasher.New(hasher.Options{})
	tests := []struct {
		name string
		opts Options
	}{
		{"no roots", Options{Interval: time.Second, Scanner: sc, Reloader: rec}},
		{"no interval", Options{Roots: []string{"/"}, Scanner: sc, Reloader: rec}},
		{"no reloader", Options{Roots: []string{"/"}, Interval: time.Second, Scanner: sc}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil {
				t.Error("New() = nil error; want one")
			}
		})
	}
}

// TestSwapDuringDeliveryReloadsAgain swaps a kubelet volume away and back
// while the reload is being delivered: the application, reading at the
// signal, may hold the intermediate version, so a second reload follows.
func TestSwapDuringDeliveryReloadsAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeletUpdate(t, dir, 1, map[string]string{"app.conf": "v1"})
	var once sync.Once
	rec := &recorder{fail: func(int) error {
		once.Do(func() {
			kubeletUpdate(t, dir, 3, map[string]string{"app.conf": "intermediate"})
			kubeletUpdate(t, dir, 4, map[string]string{"app.conf": "v2"})
		})
		return nil
	}}
	h := start(t, Options{Roots: []string{dir}, Reloader: rec})
	kubeletUpdate(t, dir, 2, map[string]string{"app.conf": "v2"})
	h.waitFor("two reloads", func() bool { return h.rec.count() == 2 })
	h.scans(5)
	if got := h.rec.count(); got != 2 {
		t.Errorf("reloads = %d; want 2 (the change, then once more for the swap during delivery)", got)
	}
}

// TestChangeDuringDeliveryIsDelivered changes a plain file while the reload
// is being delivered; the change must be delivered too.
func TestChangeDuringDeliveryIsDelivered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "a.conf")
	write(t, conf, "v1")
	var once sync.Once
	rec := &recorder{fail: func(int) error {
		once.Do(func() { write(t, conf, "v3") })
		return nil
	}}
	h := start(t, Options{Roots: []string{dir}, Reloader: rec})
	write(t, conf, "v2")
	h.waitFor("two reloads", func() bool { return h.rec.count() == 2 })
	h.scans(5)
	if got := h.rec.count(); got != 2 {
		t.Errorf("reloads = %d; want 2", got)
	}
}

// TestIdenticalSwapsAfterDeliveryAreNoChange makes sure the check after a
// delivery does not turn later identical-content swaps into reloads.
func TestIdenticalSwapsAfterDeliveryAreNoChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeletUpdate(t, dir, 1, map[string]string{"app.conf": "v1"})
	h := start(t, Options{Roots: []string{dir}})
	kubeletUpdate(t, dir, 2, map[string]string{"app.conf": "v2"})
	h.waitFor("the reload", func() bool { return h.rec.count() == 1 })
	h.scans(3)
	for v := 3; v < 8; v++ {
		kubeletUpdate(t, dir, v, map[string]string{"app.conf": "v2"})
		h.scans(2)
	}
	if got := h.rec.count(); got != 1 {
		t.Errorf("reloads = %d; want 1", got)
	}
}

// TestKubeletWaitsForVisibleLinks holds kubelet's window between the
// `..data` swap and the creation of an added key's visible link: no reload
// may go out while an application reading through the links would miss the
// new key, and one goes out as soon as the link is there.
func TestKubeletWaitsForVisibleLinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeletUpdate(t, dir, 1, map[string]string{"app.conf": "v1"})
	h := start(t, Options{Roots: []string{dir}, Settle: time.Hour})
	// kubeletUpdate's steps, stopped before the new key's link.
	ts := filepath.Join(dir, "..2026_11_22_01_00_00.2")
	write(t, filepath.Join(ts, "app.conf"), "v1")
	write(t, filepath.Join(ts, "new.conf"), "new")
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	h.scans(4)
	if got := h.rec.count(); got != 0 {
		t.Fatalf("reloads before the new key's link exists = %d; want 0", got)
	}
	if err := os.Symlink("..data/new.conf", filepath.Join(dir, "new.conf")); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the reload", func() bool { return h.rec.count() == 1 })
}
