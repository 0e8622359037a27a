package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/hasher"
)

// TestDefaultsRefuseASparse64GiBFile: with no MAX_ variable set, one sparse
// `truncate -s 64G` file beside a config file is refused from its stat
// (MAX_FILE_SIZE defaults to 64 MiB) instead of being read for minutes:
// hash finishes, names the file, the limit, the variable and the fix, and
// hashes the rest.
func TestDefaultsRefuseASparse64GiBFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("listen 80\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 30); err != nil {
		t.Skipf("sparse 64 GiB file: %v", err)
	}
	f.Close()
	// A guard so that a regression fails instead of reading 64 GiB; not a
	// timed assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, logs strings.Builder
	err = run(ctx, []string{"hash", dir}, nil, &out, &logs)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("hash = %v (ctx %v); want the one file's limit error:\n%s", err, ctx.Err(), out.String())
	}
	want := fmt.Sprintf("  error (limit)  disk.img: %d bytes, over the size limit of %d (MAX_FILE_SIZE=%[2]d; raise it or leave the file out with EXCLUDE)\n",
		int64(64<<30), int64(hasher.DefaultMaxFileSize))
	if !strings.Contains(out.String(), want) {
		t.Errorf("hash output lacks %q:\n%s", want, out.String())
	}
	if !strings.Contains(out.String(), "app.conf") {
		t.Errorf("hash output lacks app.conf:\n%s", out.String())
	}
}

// TestHashAdvisesDepthAndTotal: the two new limits are named with their
// variables, as given, and the fix.
func TestHashAdvisesDepthAndTotal(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "x.conf"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POLLRELOAD_MAX_DEPTH", "2") // envconfig reads the process environment
	var out strings.Builder
	if err := run(context.Background(), []string{"hash", dir}, os.Environ(), &out, &strings.Builder{}); err == nil {
		t.Fatalf("hash of a tree deeper than MAX_DEPTH succeeded:\n%s", out.String())
	}
	want := "  error (limit)  a/b/c: directory nested more than 2 levels below the root, not walked (POLLRELOAD_MAX_DEPTH=2; raise it or leave the directory out with EXCLUDE)\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("hash output lacks %q:\n%s", want, out.String())
	}

	t.Setenv("POLLRELOAD_MAX_DEPTH", "0")
	t.Setenv("MAX_TOTAL_SIZE", "50")
	out.Reset()
	err := run(context.Background(), []string{"hash", dir}, os.Environ(), &out, &strings.Builder{})
	if want := "scan " + dir + ": regular files add up to more than 50 bytes (MAX_TOTAL_SIZE=50; raise it or narrow INCLUDE/EXCLUDE)"; err == nil || err.Error() != want {
		t.Errorf("hash over MAX_TOTAL_SIZE = %v; want %q", err, want)
	}
}
