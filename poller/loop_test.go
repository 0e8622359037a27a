package poller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/metrics"
	"github.com/pollreload/pollreload/signaler"
)

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
	h := start(t, Options{Roots: []string{dir}, Targets: one(rec)})
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
	h := start(t, Options{Roots: []string{dir}, Targets: one(rec)})
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
		{"no roots", Options{Interval: time.Second, Scanner: sc, Targets: one(rec)}},
		{"no interval", Options{Roots: []string{"/"}, Scanner: sc, Targets: one(rec)}},
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
