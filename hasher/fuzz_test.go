package hasher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
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

// Generated trees for FuzzScanWork. A tree is built from a program of
// 3-byte instructions: an operation, then two operands that pick among the
// directories and files made so far (modulo their count). Operations:
const (
	opDir     = iota // make a directory in a (depth at most 8)
	opFile           // make a file in a, b bytes long
	opDirLink        // link in a to directory b, by a relative path
	opOddLink        // link in a to: b's file, ".", "..", an absolute path, nowhere, out of the root, itself
	opFIFO           // make a FIFO in a
	opChmod          // chmod 000 directory a (b even) or file b (b odd)
	opCount
)

// fanOutProgram encodes the tree: 13 directories at the root and in
// each of the first 12, six links to the next.
func fanOutProgram() []byte {
	var p []byte
	for range 13 {
		p = append(p, opDir, 0, 0)
	}
	for i := range 12 {
		for range 6 {
			p = append(p, opDirLink, byte(i+1), byte(i+2))
		}
	}
	return p
}

// treeBuilder runs programs under a root, remembering what it made.
type treeBuilder struct {
	root  string
	dirs  []string
	depth map[string]int
	files []string
	n     int
}

func newTreeBuilder(root string) *treeBuilder {
	return &treeBuilder{root: root, dirs: []string{root}, depth: map[string]int{root: 0}}
}

// run runs program (at most 96 instructions in all).
func (tb *treeBuilder) run(t *testing.T, program []byte) {
	t.Helper()
	dirs, depth, files := tb.dirs, tb.depth, tb.files
	defer func() { tb.dirs, tb.files = dirs, files }()
	for i := 0; i+2 < len(program) && tb.n < 96; i += 3 {
		tb.n++
		op, a, b := program[i]%opCount, int(program[i+1]), int(program[i+2])
		dir := dirs[a%len(dirs)]
		name := filepath.Join(dir, fmt.Sprintf("e%d", tb.n))
		var err error
		switch op {
		case opDir:
			if depth[dir] >= 8 {
				continue
			}
			if err = os.Mkdir(name, 0o755); err == nil {
				dirs = append(dirs, name)
				depth[name] = depth[dir] + 1
			}
		case opFile:
			if err = os.WriteFile(name, []byte(strings.Repeat("x", b)), 0o644); err == nil {
				files = append(files, name)
			}
		case opDirLink:
			var target string
			if target, err = filepath.Rel(dir, dirs[b%len(dirs)]); err == nil {
				err = os.Symlink(target, name)
			}
		case opOddLink:
			targets := []string{".", "..", "/etc", "nowhere", strings.Repeat("../", depth[dir]+1) + "out", filepath.Base(name)}
			target := targets[b%len(targets)]
			if len(files) > 0 && b%(len(targets)+1) == len(targets) {
				target, err = filepath.Rel(dir, files[b%len(files)])
			}
			if err == nil {
				err = os.Symlink(target, name)
			}
		case opFIFO:
			err = unix.Mkfifo(name, 0o644)
		case opChmod:
			switch {
			case b%2 == 0 && len(dirs) > 1:
				err = os.Chmod(dirs[1+a%(len(dirs)-1)], 0)
			case b%2 == 1 && len(files) > 0:
				err = os.Chmod(files[a%len(files)], 0)
			}
			continue // no new entry
		}
		if err != nil {
			t.Fatalf("build %d %d %d: %v", op, a, b, err)
		}
	}
}

// FuzzScanWork scans generated trees (directories up to 8 deep, files,
// links to directories in every direction, odd links, FIFOs, unreadable
// directories and files) as uid 65534, twice: a first scan and a steady
// one after the unreadable parts were made unreadable. Each scan's work
// (see scan.work) must stay within a bound proportional to the tree's
// entries and its links' path lengths; a walk that followed every path
// through the links (6^12 for the fan-out seed) or that swept the whole
// cache for each unreadable directory would not. The seed corpus holds the
// fan-out tree, so `go test` runs it.
func FuzzScanWork(f *testing.F) {
	f.Add(fanOutProgram())
	f.Add([]byte{opDir, 0, 0, opDir, 1, 0, opDir, 2, 0, opDirLink, 3, 0, opDirLink, 3, 1, opDirLink, 0, 3, opFile, 3, 10})
	f.Add([]byte{opDir, 0, 0, opFile, 1, 5, opOddLink, 1, 0, opOddLink, 1, 1, opOddLink, 1, 2, opOddLink, 1, 3, opOddLink, 1, 4, opOddLink, 1, 5, opOddLink, 1, 6, opFIFO, 1, 0, opChmod, 0, 0, opChmod, 0, 1})
	chain := []byte{}
	for i := range 10 {
		chain = append(chain, opDir, byte(i), 0, opDirLink, byte(i+1), 0, opFile, byte(i+1), byte(i))
	}
	f.Add(chain)
	f.Fuzz(func(t *testing.T, program []byte) {
		base := scratch(t) // tmpfs: a shared disk makes each run take seconds
		root := filepath.Join(base, "root")
		must(t, os.Mkdir(root, 0o755))
		writeFile(t, filepath.Join(base, "out", "secret"), "SECRET")
		openToNobody(t, root)
		must(t, os.Chmod(base, 0o755))
		// Half the program first, scanned readable; then the rest (the
		// chmods bite now), scanned again: the second scan carries over
		// what it cannot read.
		half := len(program) / 6 * 3
		tb := newTreeBuilder(root)
		tb.run(t, program[:half])
		h := New(Options{MaxDepth: DefaultMaxDepth, MaxFileSize: DefaultMaxFileSize})
		scanWithin := func(what string) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard, not an assertion
			defer cancel()
			var err error
			asNobody(t, func() { _, err = h.Scan(ctx, root) })
			if err != nil && !errors.Is(err, fs.ErrPermission) {
				t.Fatalf("%s: Scan: %v", what, err)
			}
			checkWork(t, h, root, what)
		}
		scanWithin("first scan")
		tb.run(t, program[half:])
		scanWithin("second scan")
		scanWithin("steady scan")
		t.Cleanup(func() { chmodAll(root) })
	})
}

// chmodAll makes everything below root writable again, so that the test's
// cleanup can remove it.
func chmodAll(root string) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.Type()&fs.ModeSymlink == 0 {
			os.Chmod(p, 0o755)
		}
		if err != nil && d != nil && d.IsDir() {
			os.Chmod(p, 0o755)
			filepath.WalkDir(p, func(string, fs.DirEntry, error) error { return nil })
		}
		return nil
	})
}
