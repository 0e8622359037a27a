package hasher

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireTool skips the test when an external command is missing, or fails
// it when REQUIRE_TOOLS=1 (CI installs everything).
func requireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not installed: apt-get install -y %s", name, pkg)
	if os.Getenv("REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// writeFile creates path (and its directories) with content.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeTree creates the files of tree (relative path -> content) under dir.
func writeTree(t testing.TB, dir string, tree map[string]string) {
	t.Helper()
	for rel, content := range tree {
		writeFile(t, filepath.Join(dir, rel), content)
	}
}

// agedHasher returns a Hasher whose clock runs an hour ahead, so every file
// written by the test is already old enough for its digest to be cached.
func agedHasher(opts Options) *Hasher {
	h := New(opts)
	h.now = func() time.Time { return time.Now().Add(time.Hour) }
	return h
}

// mustScan scans root and fails the test on error.
func mustScan(t testing.TB, h *Hasher, root string) *Snapshot {
	t.Helper()
	snap, err := h.Scan(context.Background(), root)
	if err != nil {
		t.Fatalf("Scan(%s): %v", root, err)
	}
	return snap
}

// paths returns the sorted keys of snap.Files.
func paths(snap *Snapshot) []string {
	var ps []string
	for p := range snap.Files {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// skips renders snap.Skipped as "path=reason" strings.
func skips(snap *Snapshot) []string {
	var out []string
	for _, s := range snap.Skipped {
		out = append(out, s.Path+"="+s.Reason)
	}
	slices.Sort(out)
	return out
}

// errorKinds renders snap.Errors as "path=kind" strings.
func errorKinds(snap *Snapshot) []string {
	var out []string
	for _, e := range snap.Errors {
		out = append(out, e.Path+"="+e.Kind)
	}
	slices.Sort(out)
	return out
}

// logBuffer is a concurrency-safe buffer for a test logger.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

func testLogger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// kubeletVolume replays what kubelet's AtomicWriter does to a ConfigMap or
// Secret volume, in its order.
type kubeletVolume struct {
	dir     string
	visible map[string]bool // top-level user-visible names
}

// update publishes payload as version n:
//  1. write the payload into a new `..<timestamp>.<n>` directory,
//  2. point `..data_tmp` at it and rename that over `..data`,
//  3. create the user-visible `key -> ..data/key` links that are new,
//  4. remove the user-visible links whose keys are gone,
//  5. delete the previous timestamped directory.
func (v *kubeletVolume) update(n int, payload map[string]string) error {
	tsName := fmt.Sprintf("..%s.%d", time.Now().UTC().Format("2006_01_02_15_04_05"), n)
	tsDir := filepath.Join(v.dir, tsName)
	if err := os.Mkdir(tsDir, 0o755); err != nil {
		return err
	}
	newVisible := make(map[string]bool)
	for rel, content := range payload {
		p := filepath.Join(tsDir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
		newVisible[strings.SplitN(rel, "/", 2)[0]] = true
	}
	old, err := os.Readlink(filepath.Join(v.dir, "..data"))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(tsName, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		return err
	}
	for name := range newVisible {
		if v.visible[name] {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
			return err
		}
	}
	for name := range v.visible {
		if !newVisible[name] {
			if err := os.Remove(filepath.Join(v.dir, name)); err != nil {
				return err
			}
		}
	}
	v.visible = newVisible
	if old != "" {
		return os.RemoveAll(filepath.Join(v.dir, old))
	}
	return nil
}

// newKubeletVolume creates a volume in a new temporary directory holding
// version n of payload.
func newKubeletVolume(t testing.TB, n int, payload map[string]string) *kubeletVolume {
	t.Helper()
	v := &kubeletVolume{dir: t.TempDir()}
	if err := v.update(n, payload); err != nil {
		t.Fatal(err)
	}
	return v
}
