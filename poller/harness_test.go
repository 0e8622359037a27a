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

// This file is the loop tests' harness: a recording reloader, a running
// loop with its metrics, and writers of plain and kubelet trees.

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

// one is the targets of a loop with a single, unnamed target.
func one(r signaler.Reloader) []Target { return []Target{{Reloader: r}} }

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
	if len(opts.Targets) == 0 {
		opts.Targets = one(h.rec)
	} else if r, ok := opts.Targets[0].Reloader.(*recorder); ok && len(opts.Targets) == 1 {
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
