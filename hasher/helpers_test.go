package hasher

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

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

// aliases renders snap.Aliases as "path=target" strings.
func aliases(snap *Snapshot) []string {
	var out []string
	for p, target := range snap.Aliases {
		out = append(out, p+"="+target)
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
