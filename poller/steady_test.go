package poller

import (
	"context"
	"fmt"
	"testing"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/internal/testenv"
)

// steadyLoop returns a Loop over a 20-key kubelet volume that has taken its
// baseline and settled past the racy window, so that every further step is
// a steady tick: stat-only scan, no change, no delivery.
func steadyLoop(tb testing.TB) *Loop {
	tb.Helper()
	dir := tb.TempDir()
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("key%02d.conf", i)] = fmt.Sprintf("key%02d = %0600d\n", i, i)
	}
	if _, err := testenv.NewKubeletWriter(dir).Write(files); err != nil {
		tb.Fatal(err)
	}
	l, err := New(Options{
		Roots:    []string{dir},
		Interval: 1e9,
		Scanner:  hasher.New(hasher.Options{}),
		Targets:  one(&recorder{}),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	// The hasher re-reads files within its racy window (a few seconds
	// after they were written); wait until a tick reads nothing.
	testenv.WaitFor(tb, 10e9, func() error {
		l.step(ctx)
		if l.snaps[0].BytesRead != 0 {
			return fmt.Errorf("still reading content")
		}
		return nil
	})
	l.step(ctx)
	return l
}

// TestSteadyTickAllocatesNothing: a tick over an unchanged kubelet volume
// (scan, tracker, schedule, health, metrics) allocates nothing.
func TestSteadyTickAllocatesNothing(t *testing.T) {
	l := steadyLoop(t)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(50, func() { l.step(ctx) })
	t.Logf("allocations per steady tick: %v", allocs)
	if allocs != 0 {
		t.Errorf("a steady tick allocates %v times; want 0", allocs)
	}
}

// BenchmarkSteadyKubeletTick is one steady tick of the loop over a 20-key
// kubelet volume; run with -benchmem.
func BenchmarkSteadyKubeletTick(b *testing.B) {
	l := steadyLoop(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.step(ctx)
	}
}
