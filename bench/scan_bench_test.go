package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/internal/testenv"
)

// makeSmallTree writes n files of 4 KiB in nested directories (10 x 10 x
// n/100), the shape compare.sh uses.
func makeSmallTree(b *testing.B, n int) string {
	b.Helper()
	root := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	block := make([]byte, 4096)
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, fmt.Sprintf("a%d", i%10), fmt.Sprintf("b%d", i/10%10))
		if i < 100 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		for j := range block {
			block[j] = byte(rng.Uint32())
		}
		name := filepath.Join(dir, fmt.Sprintf("f%d.conf", i))
		if err := os.WriteFile(name, block, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return root
}

// makeLargeFiles writes n files of size random bytes.
func makeLargeFiles(b *testing.B, n int, size int64) string {
	b.Helper()
	root := b.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < n; i++ {
		f, err := os.Create(filepath.Join(root, fmt.Sprintf("blob%d.bin", i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyN(f, rngReader{rng}, size); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return root
}

type rngReader struct{ r *rand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}

// scan runs one Scan and fails the benchmark on any error.
func scan(b *testing.B, h *hasher.Hasher, root string) *hasher.Snapshot {
	b.Helper()
	snap, err := h.Scan(context.Background(), root)
	if err != nil {
		b.Fatal(err)
	}
	if len(snap.Errors) > 0 {
		b.Fatalf("scan errors: %v", snap.Errors)
	}
	return snap
}

// BenchmarkColdLargeFiles hashes 4 x 64 MiB with a fresh Hasher each time
// (no remembered digests; the page cache is warm). compare.sh runs the same
// case at 4 x 256 MiB against xxhsum.
func BenchmarkColdLargeFiles(b *testing.B) {
	const n, size = 4, 64 << 20
	root := makeLargeFiles(b, n, size)
	b.SetBytes(n * size)
	for b.Loop() {
		scan(b, hasher.New(hasher.Options{}), root)
	}
}

// BenchmarkColdSmallFiles hashes 10,000 files of 4 KiB with a fresh Hasher
// each time.
func BenchmarkColdSmallFiles(b *testing.B) {
	const n = 10000
	root := makeSmallTree(b, n)
	b.SetBytes(n * 4096)
	for b.Loop() {
		scan(b, hasher.New(hasher.Options{}), root)
	}
}

// BenchmarkSteadySmallFiles is the steady tick: the same Hasher rescans the
// unchanged 10,000-file tree, which must cost stats only. It reports the
// content bytes each tick read, which must be 0.
func BenchmarkSteadySmallFiles(b *testing.B) {
	const n = 10000
	root := makeSmallTree(b, n)
	// A file changed within the hasher's racy window (2 s) of a scan is
	// read again; a steady tree is one that has not changed for longer.
	time.Sleep(2500 * time.Millisecond)
	h := hasher.New(hasher.Options{})
	scan(b, h, root)
	b.ReportAllocs()
	var read int64
	for b.Loop() {
		read += scan(b, h, root).BytesRead
	}
	b.ReportMetric(float64(read)/float64(b.N), "content-B/op")
	if read != 0 {
		b.Errorf("steady ticks read %d content bytes; want 0", read)
	}
}

// BenchmarkSteadyKubeletVolume is the idle tick: the same Hasher rescans an
// unchanged kubelet-style volume of 20 keys (the `..data` layout), which is
// what a sidecar beside a ConfigMap does once per POLL_INTERVAL all day.
func BenchmarkSteadyKubeletVolume(b *testing.B) {
	dir := b.TempDir()
	files := make(map[string]string, 20)
	for i := range 20 {
		files[fmt.Sprintf("key%02d.conf", i)] = fmt.Sprintf("key%02d = %0600d\n", i, i)
	}
	if _, err := testenv.NewKubeletWriter(dir).Write(files); err != nil {
		b.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // past the racy window, as in BenchmarkSteadySmallFiles
	h := hasher.New(hasher.Options{})
	if snap := scan(b, h, dir); snap.Kind != hasher.KindKubelet || len(snap.Files) != 20 {
		b.Fatalf("baseline: got kind %v with %d files; want kubelet with 20", snap.Kind, len(snap.Files))
	}
	b.ReportAllocs()
	var read int64
	for b.Loop() {
		read += scan(b, h, dir).BytesRead
	}
	if read != 0 {
		b.Errorf("steady ticks read %d content bytes; want 0", read)
	}
}
