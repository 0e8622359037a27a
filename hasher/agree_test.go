package hasher

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

// TestCachedScanAgreesWithFreshScan replays kubelet updates while a Hasher
// scans concurrently, then checks at every quiet point that its cached
// snapshot equals what a Hasher with no cache sees: the stat cache must never
// hide a version.
func TestCachedScanAgreesWithFreshScan(t *testing.T) {
	dir := t.TempDir()
	w := testenv.NewKubeletWriter(dir)
	keys := []string{"app.conf", "db.conf", "flags/a.txt", "flags/b.txt", "tls.crt"}
	state := func(n int) map[string]string {
		m := map[string]string{}
		r := rand.New(rand.NewPCG(uint64(n), 1))
		for _, k := range keys {
			if r.IntN(2) == 0 {
				m[k] = fmt.Sprintf("state=%06d key=%s\n", n, k)
			}
		}
		if len(m) == 0 {
			m["app.conf"] = fmt.Sprintf("state=%06d key=app.conf\n", n)
		}
		return m
	}
	h := New(Options{})
	ctx := context.Background()
	cur := 1
	if _, err := w.Write(state(cur)); err != nil {
		t.Fatal(err)
	}
	rounds := 400
	if testing.Short() {
		rounds = 50
	}
	for i := 0; i < rounds; i++ {
		switch rand.IntN(3) {
		case 0:
			cur++
		case 1:
			if cur > 1 {
				cur--
			}
		}
		if _, err := w.Write(state(cur)); err != nil {
			t.Fatal(err)
		}
		// Scan concurrently with the next few writes.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for j := 0; j < 3; j++ {
				h.Scan(ctx, dir)
			}
		}()
		for j := 0; j < rand.IntN(4); j++ {
			cur++
			if _, err := w.Write(state(cur)); err != nil {
				t.Fatal(err)
			}
		}
		<-done
		got, err := h.Scan(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		want, err := New(Options{}).Scan(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != want.Digest {
			t.Fatalf("write %d (state %d): cached scan %x != fresh %x\ncached: %v\nfresh: %v", i, cur, got.Digest, want.Digest, got.Files, want.Files)
		}
	}
}
