package hasher_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/pollreload/pollreload/hasher"
)

// Example scans a directory, changes it, and scans it again: the digest
// moves and Diff names what changed.
func Example() {
	dir, err := os.MkdirTemp("", "hasher-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "app.conf"), []byte("listen 80\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "conf.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "conf.d", "site.conf"), []byte("server_name example.org;\n"), 0o644)

	h := hasher.New(hasher.Options{})
	ctx := context.Background()
	before, err := h.Scan(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(before.Kind, len(before.Files), "files,", before.Bytes, "bytes")

	os.WriteFile(filepath.Join(dir, "app.conf"), []byte("listen 8080\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "conf.d", "extra.conf"), []byte("gzip on;\n"), 0o644)
	after, err := h.Scan(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	added, changed, removed := hasher.Diff(before, after)
	fmt.Println("digest changed:", after.Digest != before.Digest)
	fmt.Println("added:", added, "changed:", changed, "removed:", removed)
	// Output:
	// plain 2 files, 35 bytes
	// digest changed: true
	// added: [conf.d/extra.conf] changed: [app.conf] removed: []
}
