package hasher

import (
	"context"
	"testing"
	"time"
)

func BenchmarkIdleKubelet(b *testing.B) {
	h := New(Options{})
	h.now = func() time.Time { return time.Now().Add(time.Hour) }
	ctx := context.Background()
	h.Scan(ctx, "/tmp/idle")
	h.Scan(ctx, "/tmp/idle")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Scan(ctx, "/tmp/idle"); err != nil {
			b.Fatal(err)
		}
	}
}
