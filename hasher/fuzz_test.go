package hasher

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

// FuzzContainment plants three symlinks with fuzzed targets at different
// depths of a root that sits beside a directory of secrets, and checks that
// no scan ever hashes a secret, whatever the links say. In targets, $OUT and
// $ROOT stand for the absolute paths of the two directories.
func FuzzContainment(f *testing.F) {
	seeds := [][3]string{
		{"../out/secret", "x", "x"},
		{"$OUT/secret", "$OUT", "$ROOT/../out/secret"},
		{"sub/../../out/secret", "../../out", "../../../out/secret"},
		{"l1", "../l1", "../../sub/l2"},
		{".", "..", "../.."},
		{"sub", "deep", "../../sub/deep/l3"},
		{"$ROOT/inside", "../inside", "x"},
		{"sub/l2", "../../out", "../l2/secret"},
		{"sub/deep/l3", "../../l1/secret", ".."},
		{"out/secret", "./../../out/./secret", "/"},
		{"/proc/self/root/etc/passwd", "/dev/zero", "../../../../../../etc/hostname"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, t1, t2, t3 string) {
		base := t.TempDir()
		root, out := filepath.Join(base, "root"), filepath.Join(base, "out")
		inside := map[string]string{"inside": "inside", "sub/deep/x": "deep"}
		writeTree(t, root, inside)
		writeTree(t, out, map[string]string{"secret": "SECRET", "l1/secret": "SECRET-2", "l2/secret": "SECRET-3"})
		forbidden := map[uint64]bool{}
		for _, c := range []string{"SECRET", "SECRET-2", "SECRET-3"} {
			forbidden[xxhash.Sum64String(c)] = true
		}
		// A link in out/ pointing back in makes "escape then return"
		// paths possible.
		_ = os.Symlink(root, filepath.Join(out, "back"))

		repl := strings.NewReplacer("$OUT", out, "$ROOT", root)
		for i, target := range []string{t1, t2, t3} {
			if target == "" || len(target) > 512 || strings.ContainsRune(target, 0) {
				continue
			}
			link := []string{"l1", "sub/l2", "sub/deep/l3"}[i]
			_ = os.Symlink(repl.Replace(target), filepath.Join(root, link))
		}

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		snap, err := New(Options{}).Scan(ctx, root)
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		for p, f := range snap.Files {
			if forbidden[f.Digest] {
				t.Errorf("%s: read a file outside the root", p)
			}
		}
		for rel, content := range inside {
			if snap.Files[rel].Digest != xxhash.Sum64String(content) {
				t.Errorf("%s missing or wrong: %+v", rel, snap.Files[rel])
			}
		}
	})
}
