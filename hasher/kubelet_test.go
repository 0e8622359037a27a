package hasher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/pollreload/pollreload/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestScanKubeletVolume(t *testing.T) {
	payload := map[string]string{"app.conf": "listen 80\n", "tls/key.pem": "KEY\n", "tls/cert.pem": "CERT\n"}
	v := newKubeletVolume(t, payload)
	// Leftovers kubelet can leave behind; none of them is part of the volume.
	writeFile(t, filepath.Join(v.Dir, "..2020_01_01_00_00_00.9", "app.conf"), "old\n")
	if err := os.Symlink("..2020_01_01_00_00_00.9", filepath.Join(v.Dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}

	h := New(Options{})
	snap := mustScan(t, h, v.Dir)
	if snap.Kind != KindKubelet {
		t.Errorf("Kind = %v; want kubelet", snap.Kind)
	}
	if got, want := paths(snap), []string{"app.conf", "tls/cert.pem", "tls/key.pem"}; !slices.Equal(got, want) {
		t.Errorf("files = %q; want %q", got, want)
	}
	for rel, content := range payload {
		if got, want := snap.Files[rel].Digest, xxhash.Sum64String(content); got != want {
			t.Errorf("digest of %s = %x; want %x", rel, got, want)
		}
	}
	link, _ := os.Readlink(filepath.Join(v.Dir, "..data"))
	if snap.DataDir != link {
		t.Errorf("DataDir = %q; want %q", snap.DataDir, link)
	}
	if len(snap.Errors) != 0 || len(snap.Skipped) != 0 {
		t.Errorf("errors %v, skipped %v; want none", snap.Errors, snap.Skipped)
	}

	must(t, os.Remove(filepath.Join(v.Dir, "..data_tmp")))

	// An identical-content swap is a new directory and new inodes, but the
	// same content: the digest must not move.
	if _, err := v.Write(payload); err != nil {
		t.Fatal(err)
	}
	same := mustScan(t, h, v.Dir)
	if same.DataDir == snap.DataDir {
		t.Fatalf("DataDir did not change across the swap: %q", same.DataDir)
	}
	if same.Digest != snap.Digest {
		t.Errorf("identical swap changed digest %x -> %x", snap.Digest, same.Digest)
	}

	next := map[string]string{"app.conf": "listen 81\n", "tls/key.pem": "KEY\n", "extra": "x"}
	if _, err := v.Write(next); err != nil {
		t.Fatal(err)
	}
	changed := mustScan(t, h, v.Dir)
	added, modified, removed := Diff(same, changed)
	if !slices.Equal(added, []string{"extra"}) || !slices.Equal(modified, []string{"app.conf"}) || !slices.Equal(removed, []string{"tls/cert.pem"}) {
		t.Errorf("Diff = %q, %q, %q; want [extra], [app.conf], [tls/cert.pem]", added, modified, removed)
	}
}

func TestScanKubeletRescansWhenDataMoves(t *testing.T) {
	v1 := map[string]string{"a": "one-a", "b": "one-b"}
	v2 := map[string]string{"a": "two-a", "c": "two-c"}
	v := newKubeletVolume(t, v1)
	h := New(Options{})
	walks := 0
	h.afterList = func(dirRel string) {
		if dirRel != "" {
			return
		}
		walks++
		if walks == 1 {
			// The swap lands after the listing of version 1: its files
			// vanish under the walk.
			if _, err := v.Write(v2); err != nil {
				t.Error(err)
			}
		}
	}
	snap := mustScan(t, h, v.Dir)
	if walks != 2 {
		t.Errorf("walked the data directory %d times; want 2", walks)
	}
	if got, want := paths(snap), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Errorf("files = %q; want %q", got, want)
	}
	for rel, content := range v2 {
		if snap.Files[rel].Digest != xxhash.Sum64String(content) {
			t.Errorf("%s does not hold version 2 content", rel)
		}
	}
	if len(snap.Errors) != 0 {
		t.Errorf("errors = %v; want none (the vanished version 1 files are not errors)", snap.Errors)
	}
}

func TestScanKubeletGivesUpWhenDataNeverSettles(t *testing.T) {
	v := newKubeletVolume(t, map[string]string{"a": "0"})
	h := New(Options{})
	n := 0
	h.afterList = func(dirRel string) {
		if dirRel == "" {
			n++
			if _, err := v.Write(map[string]string{"a": strconv.Itoa(n)}); err != nil {
				t.Error(err)
			}
		}
	}
	_, err := h.Scan(context.Background(), v.Dir)
	if err == nil {
		t.Fatal("Scan of a volume swapped during every walk succeeded; want an error")
	}
	if n != maxKubeletAttempts {
		t.Errorf("attempts = %d; want %d", n, maxKubeletAttempts)
	}
	t.Logf("error after %d attempts: %v", n, err)
}

// stressVersion is the payload of version n in the stress test: some keys
// come and go between versions, and every file names its version, padded so
// that all versions have the same sizes (the cache must not be fooled).
func stressVersion(n int) map[string]string {
	keys := []string{"app.conf", "tls/cert.pem", "k" + strconv.Itoa(n%4)}
	if n%2 == 1 {
		keys = append(keys, "odd/only")
	}
	p := make(map[string]string, len(keys))
	for _, k := range keys {
		p[k] = fmt.Sprintf("version=%08d key=%s\n", n, k)
	}
	return p
}

// TestScanKubeletSwapStress replays kubelet's update sequence thousands of
// times while another goroutine scans, and checks that every snapshot holds
// exactly one version: its file set and every file's content.
func TestScanKubeletSwapStress(t *testing.T) {
	const maxUpdates = 5000
	budget := 4 * time.Second
	if testing.Short() {
		budget = time.Second
	}
	// Secret and ConfigMap volumes live on tmpfs; use one when there is one,
	// which also lets the writer replay many more updates per second.
	v := testenv.NewKubeletWriter(tmpfsDir(t))
	var versionOf sync.Map // timestamped directory name -> version
	name, err := v.Write(stressVersion(0))
	if err != nil {
		t.Fatal(err)
	}
	versionOf.Store(name, 0)
	h := New(Options{})
	versionByDigest := make(map[uint64]int)
	for n := range maxUpdates + 1 {
		for _, content := range stressVersion(n) {
			versionByDigest[xxhash.Sum64String(content)] = n
		}
	}

	var done atomic.Bool
	var updates int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		deadline := time.Now().Add(budget)
		for n := 1; n <= maxUpdates && time.Now().Before(deadline); n++ {
			name, err := v.Write(stressVersion(n))
			if err != nil {
				t.Errorf("update %d: %v", n, err)
				return
			}
			versionOf.Store(name, n)
			updates = n
		}
	}()

	var snapshots, mixed, gaveUp int
	versions := make(map[int]bool)
	for !done.Load() {
		snap, err := h.Scan(context.Background(), v.Dir)
		if err != nil {
			gaveUp++
			continue
		}
		snapshots++
		// The version comes from the content, not from DataDir: every
		// file must name the same one.
		n := -1
		for _, f := range snap.Files {
			if v, ok := versionByDigest[f.Digest]; ok {
				n = v
			}
			break
		}
		// The name is recorded just after the swap, so a scan may win
		// the race against the bookkeeping; when known it must agree.
		if vn, ok := versionOf.Load(snap.DataDir); ok && vn.(int) != n {
			t.Errorf("DataDir %s is version %d; content says %d", snap.DataDir, vn, n)
		}
		versions[n] = true
		if problem := checkVersion(snap, n); problem != "" {
			mixed++
			if mixed <= 5 {
				t.Errorf("snapshot of version %d: %s", n, problem)
			}
		}
	}
	wg.Wait()
	t.Logf("updates replayed: %d, snapshots taken: %d (distinct versions %d), mixed snapshots seen: %d, scans given up: %d",
		updates, snapshots, len(versions), mixed, gaveUp)
	if mixed != 0 {
		t.Errorf("mixed snapshots = %d; want 0", mixed)
	}
	if snapshots < 10 || len(versions) < 2 {
		t.Errorf("only %d snapshots of %d versions; the scanner did not race the writer", snapshots, len(versions))
	}
}

// checkVersion describes how snap differs from version n, or returns "".
func checkVersion(snap *Snapshot, n int) string {
	want := stressVersion(n)
	if len(snap.Errors) != 0 {
		return fmt.Sprintf("errors %v", snap.Errors)
	}
	if len(snap.Files) != len(want) {
		return fmt.Sprintf("files %q; want keys of version %d", paths(snap), n)
	}
	for k, content := range want {
		f, ok := snap.Files[k]
		if !ok {
			return fmt.Sprintf("missing %s", k)
		}
		if f.Digest != xxhash.Sum64String(content) {
			return fmt.Sprintf("%s holds another version's content", k)
		}
	}
	return ""
}

// tmpfsDir returns a new directory on /dev/shm if that is a tmpfs, else a
// t.TempDir.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	var sfs unix.Statfs_t
	if unix.Statfs("/dev/shm", &sfs) != nil || sfs.Type != unix.TMPFS_MAGIC {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "hasher-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestScanKubeletBrokenData covers volumes whose `..data` cannot be used: the
// scan fails (the caller keeps its last good state) instead of reporting an
// empty volume.
func TestScanKubeletBrokenData(t *testing.T) {
	tests := []struct {
		name, target, kind string
	}{
		{"dangling", "..2026_01_01_00_00_00.1", "not_found"},
		{"points outside", "../elsewhere", "other"},
		{"points at a file", "..file", "not_found"}, // ENOTDIR: no version directory there
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "..file"), "x")
			must(t, os.Symlink(tt.target, filepath.Join(dir, "..data")))
			_, err := New(Options{}).Scan(context.Background(), dir)
			if got := ErrorKind(err); got != tt.kind {
				t.Errorf("err %v, kind %q; want kind %q", err, got, tt.kind)
			}
		})
	}
}

// newKubeletVolume returns a kubelet-style volume in a new temporary
// directory, holding payload.
func newKubeletVolume(t *testing.T, payload map[string]string) *testenv.KubeletWriter {
	t.Helper()
	v := testenv.NewKubeletWriter(t.TempDir())
	if _, err := v.Write(payload); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestScanKubeletSubdirectory watches one directory key of a volume. The
// scan must pin `..data` as for the whole volume: following `tls ->
// ..data/tls` once would walk a version that kubelet deletes mid-walk.
func TestScanKubeletSubdirectory(t *testing.T) {
	v1 := map[string]string{"tls/cert.pem": "cert-1", "tls/key.pem": "key-1", "app.conf": "app-1"}
	v2 := map[string]string{"tls/cert.pem": "cert-2", "tls/ca.pem": "ca-2", "app.conf": "app-2"}
	v := newKubeletVolume(t, v1)
	root := filepath.Join(v.Dir, "tls")
	h := New(Options{})
	first := mustScan(t, h, root)
	if first.Kind != KindKubelet || !slices.Equal(paths(first), []string{"cert.pem", "key.pem"}) {
		t.Fatalf("kind %v, files %q; want kubelet, [cert.pem key.pem]", first.Kind, paths(first))
	}
	walks := 0
	h.afterList = func(dirRel string) {
		if dirRel == "" {
			if walks++; walks == 1 {
				if _, err := v.Write(v2); err != nil {
					t.Error(err)
				}
			}
		}
	}
	snap := mustScan(t, h, root)
	if got, want := paths(snap), []string{"ca.pem", "cert.pem"}; !slices.Equal(got, want) {
		t.Errorf("files = %q; want %q", got, want)
	}
	if snap.Files["cert.pem"].Digest != xxhash.Sum64String("cert-2") || len(snap.Errors) != 0 {
		t.Errorf("not version 2: %+v, errors %v", snap.Files, snap.Errors)
	}
}

func TestScanKubeletLinksPending(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_11_22_01_00_00.1")
	writeFile(t, filepath.Join(ts, "app.conf"), "a")
	writeFile(t, filepath.Join(ts, "tls/cert.pem"), "c")
	must(t, os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")))
	must(t, os.Symlink("..data/app.conf", filepath.Join(dir, "app.conf")))
	h := New(Options{})
	snap := mustScan(t, h, dir)
	if got, want := snap.LinksPending, []string{"tls"}; !slices.Equal(got, want) {
		t.Errorf("LinksPending = %q; want %q", got, want)
	}
	must(t, os.Symlink("..data/tls", filepath.Join(dir, "tls")))
	if got := mustScan(t, h, dir).LinksPending; len(got) != 0 {
		t.Errorf("LinksPending = %q once every link is there; want none", got)
	}
}

// TestScanKubeletCanceledMidWalk cancels the scan while the data directory is
// being walked: Scan must report the cancellation, never a nil snapshot with
// a nil error (which crashed the daemon on SIGTERM).
func TestScanKubeletCanceledMidWalk(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_11_22_01_00_00.1")
	writeFile(t, filepath.Join(ts, "app.conf"), "a")
	must(t, os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := New(Options{})
	h.afterList = func(string) { cancel() }
	snap, err := h.Scan(ctx, dir)
	if err == nil || snap != nil {
		t.Fatalf("Scan canceled mid-walk = %v, %v; want a nil snapshot and an error", snap, err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want context.Canceled", err)
	}
}

// TestScanKubeletTrustsAnUnchangedVersion: while `..data` names the same
// version directory, a tick does not walk its files (kubelet never writes
// into a version it has swapped in), but it walks them again after
// kubeletRewalk, so an in-place edit, which kubelet never makes, is still
// noticed.
func TestScanKubeletTrustsAnUnchangedVersion(t *testing.T) {
	w := newKubeletVolume(t, map[string]string{"app.conf": "v1", "b.conf": "b"})
	clock := time.Now().Add(time.Hour) // the files are long past racy
	h := New(Options{})
	h.now = func() time.Time { return clock }
	first := mustScan(t, h, w.Dir)
	mustScan(t, h, w.Dir) // a clean, stat-only walk: the version is known
	cur, err := os.Readlink(filepath.Join(w.Dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(w.Dir, cur, "app.conf"), "edited in place")
	clock = clock.Add(time.Second)
	if got := mustScan(t, h, w.Dir); got.Digest != first.Digest || got.BytesRead != 0 {
		t.Errorf("a tick within %v of the walk: digest %x, read %d; want the walked %x, nothing read", kubeletRewalk, got.Digest, got.BytesRead, first.Digest)
	}
	clock = clock.Add(kubeletRewalk)
	if got := mustScan(t, h, w.Dir); got.Digest == first.Digest || got.Files["app.conf"].Size != int64(len("edited in place")) {
		t.Errorf("after %v: digest %x (was %x); want the in-place edit seen", kubeletRewalk, got.Digest, first.Digest)
	}
	// A swap is seen on the next tick, whatever the age.
	if _, err := w.Write(map[string]string{"app.conf": "v2", "b.conf": "b"}); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Second)
	if got := mustScan(t, h, w.Dir); got.Files["app.conf"].Size != 2 || got.DataDir == cur {
		t.Errorf("after a swap: %+v; want the new version", got)
	}
}
