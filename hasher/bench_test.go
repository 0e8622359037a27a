package hasher

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchTree returns a directory holding n files of size bytes, 100 per
// subdirectory. With HASHER_BENCH_DIR set the tree is made there once and
// kept, so `find` and `xxhsum` can be timed on the very same files.
func benchTree(b *testing.B, n, size int) string {
	b.Helper()
	dir := b.TempDir()
	if keep := os.Getenv("HASHER_BENCH_DIR"); keep != "" {
		dir = filepath.Join(keep, fmt.Sprintf("tree-%d-%d", n, size))
		if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
			return dir
		}
	}
	buf := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i/100), fmt.Sprintf("file%05d.conf", i))
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if os.Getenv("HASHER_BENCH_DIR") != "" {
		os.WriteFile(filepath.Join(dir, "done"), nil, 0o644)
	}
	return dir
}

// BenchmarkScanCold hashes a tree with an empty cache: every file is read.
func BenchmarkScanCold(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			dir := benchTree(b, n, 1024)
			b.SetBytes(int64(n) * 1024)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(Options{}).Scan(context.Background(), dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScanSteady is the hot path: a tick over 10,000 unchanged files,
// which must cost metadata only. stat=openat is the NFS variant, which opens
// every file to revalidate its attributes.
func BenchmarkScanSteady(b *testing.B) {
	dir := benchTree(b, 10000, 1024)
	for _, openStat := range []bool{false, true} {
		name := "stat=fstatat"
		if openStat {
			name = "stat=openat"
		}
		b.Run(name, func(b *testing.B) {
			h := agedHasher(Options{})
			h.forceOpenStat = openStat
			ctx := context.Background()
			for range 2 { // hash, then confirm once outside the racy window
				if _, err := h.Scan(ctx, dir); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			var read int64
			for b.Loop() {
				snap, err := h.Scan(ctx, dir)
				if err != nil {
					b.Fatal(err)
				}
				read += snap.BytesRead
			}
			b.ReportMetric(float64(read)/float64(b.N), "bytesread/op")
		})
	}
}

// BenchmarkScanLargeFile measures content throughput on one file that is in
// the page cache, to compare with `xxhsum -H1`.
func BenchmarkScanLargeFile(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	if keep := os.Getenv("HASHER_BENCH_DIR"); keep != "" {
		dir = filepath.Join(keep, "large")
		os.MkdirAll(dir, 0o755)
	}
	path := filepath.Join(dir, "large.bin")
	if fi, err := os.Stat(path); err != nil || fi.Size() != size {
		buf := make([]byte, size)
		rng := rand.New(rand.NewPCG(3, 4))
		for i := 0; i < size; i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	h := New(Options{})
	h.racyMargin = 1000 * time.Hour // never trust the cache: read every time
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Scan(context.Background(), path); err != nil {
			b.Fatal(err)
		}
	}
}
