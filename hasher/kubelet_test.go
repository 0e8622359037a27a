package hasher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

func TestScanKubeletVolume(t *testing.T) {
	payload := map[string]string{"app.conf": "listen 80\n", "tls/key.pem": "KEY\n", "tls/cert.pem": "CERT\n"}
	v := newKubeletVolume(t, 1, payload)
	// Leftovers kubelet can leave behind; none of them is part of the volume.
	writeFile(t, filepath.Join(v.dir, "..2020_01_01_00_00_00.9", "app.conf"), "old\n")
	if err := os.Symlink("..2020_01_01_00_00_00.9", filepath.Join(v.dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}

	h := New(Options{})
	snap := mustScan(t, h, v.dir)
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
	link, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	if snap.DataDir != link {
		t.Errorf("DataDir = %q; want %q", snap.DataDir, link)
	}
	if len(snap.Errors) != 0 || len(snap.Skipped) != 0 {
		t.Errorf("errors %v, skipped %v; want none", snap.Errors, snap.Skipped)
	}

	must(t, os.Remove(filepath.Join(v.dir, "..data_tmp")))

	// An identical-content swap is a new directory and new inodes, but the
	// same content: the digest must not move.
	if err := v.update(2, payload); err != nil {
		t.Fatal(err)
	}
	same := mustScan(t, h, v.dir)
	if same.DataDir == snap.DataDir {
		t.Fatalf("DataDir did not change across the swap: %q", same.DataDir)
	}
	if same.Digest != snap.Digest {
		t.Errorf("identical swap changed digest %x -> %x", snap.Digest, same.Digest)
	}

	next := map[string]string{"app.conf": "listen 81\n", "tls/key.pem": "KEY\n", "extra": "x"}
	if err := v.update(3, next); err != nil {
		t.Fatal(err)
	}
	changed := mustScan(t, h, v.dir)
	added, modified, removed := Diff(same, changed)
	if !slices.Equal(added, []string{"extra"}) || !slices.Equal(modified, []string{"app.conf"}) || !slices.Equal(removed, []string{"tls/cert.pem"}) {
		t.Errorf("Diff = %q, %q, %q; want [extra], [app.conf], [tls/cert.pem]", added, modified, removed)
	}
}

func TestScanKubeletRescansWhenDataMoves(t *testing.T) {
	v1 := map[string]string{"a": "one-a", "b": "one-b"}
	v2 := map[string]string{"a": "two-a", "c": "two-c"}
	v := newKubeletVolume(t, 1, v1)
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
			if err := v.update(2, v2); err != nil {
				t.Error(err)
			}
		}
	}
	snap := mustScan(t, h, v.dir)
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
	v := newKubeletVolume(t, 0, map[string]string{"a": "0"})
	h := New(Options{})
	n := 0
	h.afterList = func(dirRel string) {
		if dirRel == "" {
			n++
			if err := v.update(n, map[string]string{"a": strconv.Itoa(n)}); err != nil {
				t.Error(err)
			}
		}
	}
	_, err := h.Scan(context.Background(), v.dir)
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
	v := &kubeletVolume{dir: tmpfsDir(t)}
	if err := v.update(0, stressVersion(0)); err != nil {
		t.Fatal(err)
	}
	h := New(Options{})

	var done atomic.Bool
	var updates int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		deadline := time.Now().Add(budget)
		for n := 1; n <= maxUpdates && time.Now().Before(deadline); n++ {
			if err := v.update(n, stressVersion(n)); err != nil {
				t.Errorf("update %d: %v", n, err)
				return
			}
			updates = n
		}
	}()

	var snapshots, mixed, gaveUp int
	versions := make(map[int]bool)
	for !done.Load() {
		snap, err := h.Scan(context.Background(), v.dir)
		if err != nil {
			gaveUp++
			continue
		}
		snapshots++
		n, err := strconv.Atoi(snap.DataDir[strings.LastIndexByte(snap.DataDir, '.')+1:])
		if err != nil {
			t.Fatalf("DataDir %q: %v", snap.DataDir, err)
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
