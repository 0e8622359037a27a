package hasher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

func TestSteadyScanReadsNothing(t *testing.T) {
	dir := t.TempDir()
	for i := range 50 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("d%d/f%d", i%5, i)), fmt.Sprintf("content %d", i))
	}
	if err := os.Symlink("d0/f0", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	h := New(Options{})
	h.now = func() time.Time { return clock }

	first := mustScan(t, h, dir)
	if first.BytesRead != first.Bytes || first.Bytes == 0 {
		t.Fatalf("first scan read %d of %d bytes; want all", first.BytesRead, first.Bytes)
	}
	// Just written: too close to the scan to trust the stat, so read again.
	racy := mustScan(t, h, dir)
	if racy.BytesRead != racy.Bytes {
		t.Errorf("scan right after writing read %d of %d bytes; want all (racy)", racy.BytesRead, racy.Bytes)
	}
	clock = clock.Add(time.Hour)
	// The content read at the racy scan is still suspect once; from then
	// on the signature is enough.
	mustScan(t, h, dir)
	for i := range 3 {
		steady := mustScan(t, h, dir)
		if steady.BytesRead != 0 {
			t.Errorf("steady scan %d read %d bytes; want 0", i, steady.BytesRead)
		}
		if steady.Digest != first.Digest || len(steady.Files) != len(first.Files) {
			t.Errorf("steady scan %d: digest %x, %d files; want %x, %d", i, steady.Digest, len(steady.Files), first.Digest, len(first.Files))
		}
	}
}

// TestSameSizeRewriteWithOldMtime rewrites a file with content of the same
// size and puts its old mtime back, as `cp -p` or rsync do. Only the ctime,
// which nobody can set, still says the file changed.
func TestSameSizeRewriteWithOldMtime(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	writeFile(t, file, "aaaa")
	old, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	var before unix.Stat_t
	must(t, unix.Stat(file, &before))
	h := agedHasher(Options{})
	mustScan(t, h, dir)
	if steady := mustScan(t, h, dir); steady.BytesRead != 0 {
		t.Fatalf("steady scan read %d bytes; want 0", steady.BytesRead)
	}

	time.Sleep(20 * time.Millisecond) // past a coarse timestamp tick
	writeFile(t, file, "bbbb")
	must(t, os.Chtimes(file, old.ModTime(), old.ModTime()))
	var after unix.Stat_t
	must(t, unix.Stat(file, &after))
	if after.Mtim != before.Mtim || after.Size != before.Size || after.Ino != before.Ino {
		t.Fatalf("setup: mtime/size/inode changed: %+v -> %+v", before, after)
	}
	if after.Ctim == before.Ctim {
		t.Fatalf("setup: ctime did not change")
	}
	snap := mustScan(t, h, dir)
	if got, want := snap.Files["f"].Digest, xxhash.Sum64String("bbbb"); got != want {
		t.Errorf("digest %x; want %x (rewrite missed)", got, want)
	}
}

// TestOpenStatPath runs the NFS code path (signature from openat+fstat) on a
// local disk: same snapshot, no content read in steady state, changes seen.
func TestOpenStatPath(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a": "a", "sub/b": "bb", "big": "0123456789"})
	must(t, os.Symlink("sub/b", filepath.Join(dir, "link")))
	plain := mustScan(t, New(Options{}), dir)

	h := agedHasher(Options{})
	h.forceOpenStat = true
	first := mustScan(t, h, dir)
	if first.Digest != plain.Digest || !slices.Equal(paths(first), paths(plain)) {
		t.Errorf("files %q, digest %x; the fstatat path saw %q, %x", paths(first), first.Digest, paths(plain), plain.Digest)
	}
	limited := New(Options{MaxFileSize: 5})
	limited.forceOpenStat = true
	if got := errorKinds(mustScan(t, limited, dir)); !slices.Equal(got, []string{"big=limit"}) {
		t.Errorf("errors = %q; want [big=limit]", got)
	}
	if steady := mustScan(t, h, dir); steady.BytesRead != 0 || steady.Digest != first.Digest {
		t.Errorf("steady: read %d bytes, digest %x; want 0, %x", steady.BytesRead, steady.Digest, first.Digest)
	}
	writeFile(t, filepath.Join(dir, "sub/b"), "BB")
	changed := mustScan(t, h, dir)
	if changed.Files["sub/b"].Digest != xxhash.Sum64String("BB") || changed.Files["link"].Digest != xxhash.Sum64String("BB") {
		t.Errorf("change through the open path missed: %+v", changed.Files)
	}
}

// TestLargeFileConstantMemory hashes a 1 GiB sparse file and a 1-byte file
// and compares what each scan allocates: the content is streamed through a
// fixed buffer, so the size of the file must not matter.
func TestLargeFileConstantMemory(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	measure := func(size int64) (allocs, bytes uint64, read int64) {
		dir := t.TempDir()
		f, err := os.Create(filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		must(t, f.Truncate(size))
		must(t, f.Close())
		h := New(Options{})
		h.racyMargin = 1000 * time.Hour // every scan reads the content
		mustScan(t, h, dir)             // warm up: buffers, cache entry
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		snap := mustScan(t, h, dir)
		runtime.ReadMemStats(&m1)
		return m1.Mallocs - m0.Mallocs, m1.TotalAlloc - m0.TotalAlloc, snap.BytesRead
	}
	smallAllocs, smallBytes, _ := measure(1)
	bigAllocs, bigBytes, read := measure(size)
	t.Logf("1 B file: %d allocs, %d bytes; %d B file: %d allocs, %d bytes", smallAllocs, smallBytes, size, bigAllocs, bigBytes)
	if read != size {
		t.Fatalf("BytesRead = %d; want %d", read, size)
	}
	// The slack absorbs allocations by the runtime itself (timers, goroutine
	// stacks under -race, which vary from run to run); a buffer per chunk
	// read would be thousands of allocations and megabytes here.
	if bigAllocs > smallAllocs+64 || bigBytes > smallBytes+256<<10 {
		t.Errorf("hashing %d bytes took %d allocs / %d bytes; a 1-byte file %d / %d: memory grows with size",
			size, bigAllocs, bigBytes, smallAllocs, smallBytes)
	}
}

// TestScanConcurrentRoots scans several roots, and one root twice, from
// parallel goroutines; run with -race.
func TestScanConcurrentRoots(t *testing.T) {
	h := New(Options{})
	var roots []string
	want := make(map[string]uint64)
	for i := range 4 {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"a": fmt.Sprint(i), "b/c": "c"})
		roots = append(roots, dir)
		want[dir] = mustScan(t, New(Options{}), dir).Digest
	}
	roots = append(roots, roots[0])
	var wg sync.WaitGroup
	for _, root := range roots {
		wg.Go(func() {
			for range 20 {
				snap, err := h.Scan(context.Background(), root)
				if err != nil {
					t.Error(err)
					return
				}
				if snap.Digest != want[root] {
					t.Errorf("%s: digest %x; want %x", root, snap.Digest, want[root])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestScanCanceled(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a/b": "b"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New(Options{}).Scan(ctx, dir); err != context.Canceled {
		t.Errorf("err = %v; want context.Canceled", err)
	}
}

// TestVerifyAfterRereadsOldDigests checks that a digest older than
// VerifyAfter is not trusted, however unchanged the stat looks: the guard
// for filesystems whose stat cannot show a rewrite (sshfs has no ctime).
func TestVerifyAfterRereadsOldDigests(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), "aaaa")
	clock := time.Now().Add(time.Hour) // past the racy margin from the start
	h := New(Options{VerifyAfter: time.Minute})
	h.verifyAfter = time.Minute // New draws it in [30s, 1m]; pin the bound
	h.now = func() time.Time { return clock }
	mustScan(t, h, dir)
	steps := []struct {
		advance  time.Duration
		wantRead int64
	}{
		{time.Second, 0},      // young digest: trusted
		{58 * time.Second, 0}, // 59 s old: still trusted
		{time.Second, 4},      // 60 s old: read again
		{time.Second, 0},      // fresh again
	}
	for i, st := range steps {
		clock = clock.Add(st.advance)
		if got := mustScan(t, h, dir).BytesRead; got != st.wantRead {
			t.Errorf("step %d: read %d bytes; want %d", i, got, st.wantRead)
		}
	}
}

// TestPipelinedReadMatchesPlainRead hashes large files, which are read on a
// second goroutine, and compares with xxhash of the same bytes: sizes on,
// just off and between chunk boundaries.
func TestPipelinedReadMatchesPlainRead(t *testing.T) {
	for _, size := range []int{pipelineMin, pipelineMin + 1, pipelineMin + pipelineChunk/2, 3*pipelineMin - 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := t.TempDir()
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i*7 + i>>11)
			}
			if err := os.WriteFile(filepath.Join(dir, "big"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			snap := mustScan(t, New(Options{}), dir)
			got := snap.Files["big"]
			if want := xxhash.Sum64(data); got.Digest != want || got.Size != int64(size) {
				t.Errorf("big: digest %x, size %d; want %x, %d", got.Digest, got.Size, want, size)
			}
			if snap.BytesRead != int64(size) {
				t.Errorf("BytesRead = %d; want %d", snap.BytesRead, size)
			}
		})
	}
}

// TestAgesAreDrawnPerHasher checks that the kubelet rewalk age and the
// VerifyAfter age are drawn per Hasher between half the bound and the bound:
// replicas started together (a rollout) must not all walk their volumes, or
// all re-read every file, in the same tick, which bench/fleet measured as a
// wave of 8 times the mean load every 30 s with one fixed age.
func TestAgesAreDrawnPerHasher(t *testing.T) {
	const verify = 10 * time.Minute
	rewalks := map[time.Duration]bool{}
	verifies := map[time.Duration]bool{}
	for range 50 {
		h := New(Options{VerifyAfter: verify})
		if h.rewalk < kubeletRewalk/2 || h.rewalk > kubeletRewalk {
			t.Errorf("rewalk age %v; want within [%v, %v]", h.rewalk, kubeletRewalk/2, kubeletRewalk)
		}
		if h.verifyAfter < verify/2 || h.verifyAfter > verify {
			t.Errorf("verify age %v; want within [%v, %v]", h.verifyAfter, verify/2, verify)
		}
		rewalks[h.rewalk] = true
		verifies[h.verifyAfter] = true
	}
	if len(rewalks) < 2 || len(verifies) < 2 {
		t.Errorf("50 Hashers drew %d rewalk ages and %d verify ages; want them to differ", len(rewalks), len(verifies))
	}
	if h := New(Options{}); h.verifyAfter != 0 {
		t.Errorf("VerifyAfter 0: drew %v; want 0 (never)", h.verifyAfter)
	}
}
