package hasher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/pollreload/pollreload/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestScanPlainTree(t *testing.T) {
	dir := t.TempDir()
	tree := map[string]string{"a.txt": "alpha", "a/b": "beta", "a/c/d": "delta", "z": "", "..x": "dots"}
	writeTree(t, dir, tree)
	snap := mustScan(t, New(Options{}), dir)
	if snap.Kind != KindPlain {
		t.Errorf("Kind = %v; want plain", snap.Kind)
	}
	if got, want := paths(snap), []string{"..x", "a.txt", "a/b", "a/c/d", "z"}; !slices.Equal(got, want) {
		t.Errorf("files = %q; want %q", got, want)
	}
	var bytes int64
	for rel, content := range tree {
		f := snap.Files[rel]
		if f.Digest != xxhash.Sum64String(content) || f.Size != int64(len(content)) {
			t.Errorf("%s = %+v; want size %d digest %x", rel, f, len(content), xxhash.Sum64String(content))
		}
		bytes += int64(len(content))
	}
	if snap.Bytes != bytes || snap.BytesRead != bytes {
		t.Errorf("Bytes %d, BytesRead %d; want %d both", snap.Bytes, snap.BytesRead, bytes)
	}
}

func TestScanSymlinks(t *testing.T) {
	tests := []struct {
		name    string
		links   map[string]string // link path -> target; "$ROOT" and "$OUT" expand
		files   map[string]string // want: path -> content of the file it reads
		skips   []string          // want: "path=reason"
		aliases []string          // want: "path=target" (links to directories walked elsewhere)
	}{
		{name: "file inside", links: map[string]string{"l": "real.txt"}, files: map[string]string{"l": "real"}},
		{name: "up and back down", links: map[string]string{"sub/l": "../real.txt"}, files: map[string]string{"sub/l": "real"}},
		{name: "directory inside", links: map[string]string{"dl": "sub"}, aliases: []string{"dl=sub"}},
		{name: "chain inside", links: map[string]string{"l1": "l2", "l2": "sub/inner.txt"}, files: map[string]string{"l1": "inner", "l2": "inner"}},
		{name: "absolute into root", links: map[string]string{"l": "$ROOT/real.txt"}, skips: []string{"l=escapes_root"}},
		{name: "absolute outside", links: map[string]string{"l": "$OUT/secret"}, skips: []string{"l=escapes_root"}},
		{name: "dotdot outside", links: map[string]string{"l": "../out/secret"}, skips: []string{"l=escapes_root"}},
		{name: "deep dotdot", links: map[string]string{"sub/l": "../../out/secret"}, skips: []string{"sub/l=escapes_root"}},
		{name: "out and back in", links: map[string]string{"l": "../root/real.txt"}, skips: []string{"l=escapes_root"}},
		{name: "chain escapes", links: map[string]string{"l1": "l2", "l2": "../out/secret"}, skips: []string{"l1=escapes_root", "l2=escapes_root"}},
		{name: "dir escapes", links: map[string]string{"dl": "../out"}, skips: []string{"dl=escapes_root"}},
		{name: "file loop", links: map[string]string{"l1": "l2", "l2": "l1"}, skips: []string{"l1=loop", "l2=loop"}},
		{name: "self loop", links: map[string]string{"l": "l"}, skips: []string{"l=loop"}},
		{name: "directory loop", links: map[string]string{"sub/up": ".."}, aliases: []string{"sub/up=."}},
		{name: "directory cycle", links: map[string]string{"d1/to2": "../d2", "d2/to1": "../d1"},
			aliases: []string{"d1/to2=d2", "d2/to1=d1"}},
		{name: "dangling", links: map[string]string{"l": "nowhere"}, skips: []string{"l=dangling"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			out := filepath.Join(base, "out")
			writeTree(t, root, map[string]string{"real.txt": "real", "sub/inner.txt": "inner"})
			writeFile(t, filepath.Join(out, "secret"), "secret")
			if strings.HasPrefix(tt.name, "directory cycle") {
				writeFile(t, filepath.Join(root, "d1", "x"), "x")
				if err := os.Mkdir(filepath.Join(root, "d2"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for link, target := range tt.links {
				target = strings.NewReplacer("$ROOT", root, "$OUT", out).Replace(target)
				if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
					t.Fatal(err)
				}
			}
			var logs logBuffer
			h := New(Options{Logger: testLogger(&logs)})
			snap := mustScan(t, h, root)

			want := map[string]string{"real.txt": "real", "sub/inner.txt": "inner"}
			if strings.HasPrefix(tt.name, "directory cycle") {
				want["d1/x"] = "x"
			}
			for p, c := range tt.files {
				want[p] = c
			}
			var wantPaths []string
			for p := range want {
				wantPaths = append(wantPaths, p)
			}
			slices.Sort(wantPaths)
			if got := paths(snap); !slices.Equal(got, wantPaths) {
				t.Errorf("files = %q; want %q", got, wantPaths)
			}
			for p, c := range want {
				if snap.Files[p].Digest != xxhash.Sum64String(c) {
					t.Errorf("%s does not hold %q", p, c)
				}
			}
			if got := skips(snap); !slices.Equal(got, tt.skips) {
				t.Errorf("skipped = %q; want %q", got, tt.skips)
			}
			if got := aliases(snap); !slices.Equal(got, tt.aliases) {
				t.Errorf("aliases = %q; want %q", got, tt.aliases)
			}
			for _, s := range tt.skips {
				if !strings.Contains(logs.String(), strings.SplitN(s, "=", 2)[1]) {
					t.Errorf("log does not mention %s:\n%s", s, logs.String())
				}
			}
			// A broken link is reported when it appears, not on every tick.
			logs.Reset()
			mustScan(t, h, root)
			if logs.String() != "" {
				t.Errorf("second scan logged again:\n%s", logs.String())
			}
		})
	}
}

func TestScanSkipsSpecialFilesWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "real"), "real")
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("fifo", filepath.Join(dir, "fifolink")); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := []string{"fifo=fifo", "fifolink=fifo", "sock=socket"}
	if os.Geteuid() == 0 {
		// /dev/null's numbers: reading it would not block, but a scan must
		// not open device nodes at all.
		if err := unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		want = append(want, "null=device")
		slices.Sort(want)
	}

	type result struct {
		snap *Snapshot
		err  error
	}
	done := make(chan result, 1)
	go func() {
		snap, err := New(Options{}).Scan(context.Background(), dir)
		done <- result{snap, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Scan blocked on a special file")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := paths(r.snap); !slices.Equal(got, []string{"real"}) {
		t.Errorf("files = %q; want [real]", got)
	}
	if got := skips(r.snap); !slices.Equal(got, want) {
		t.Errorf("skipped = %q; want %q", got, want)
	}
}

func TestDigestFraming(t *testing.T) {
	base := map[string]string{"a.txt": "alpha", "sub/b.txt": "beta", "ab": "c"}
	tests := []struct {
		name   string
		mutate func(t *testing.T, dir string)
		change bool
	}{
		{"content same size", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "a.txt"), "alphA") }, true},
		{"content grows", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "a.txt"), "alpha!") }, true},
		{"file added", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "new"), "n") }, true},
		{"empty file added", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "empty"), "") }, true},
		{"file deleted", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "a.txt"))) }, true},
		{"renamed", func(t *testing.T, dir string) {
			must(t, os.Rename(filepath.Join(dir, "a.txt"), filepath.Join(dir, "c.txt")))
		}, true},
		{"moved to another directory", func(t *testing.T, dir string) {
			must(t, os.Rename(filepath.Join(dir, "sub/b.txt"), filepath.Join(dir, "b.txt")))
		}, true},
		{"contents swapped", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "a.txt"), "beta")
			writeFile(t, filepath.Join(dir, "sub/b.txt"), "alpha")
		}, true},
		{"byte moved from content to name", func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "ab")))
			writeFile(t, filepath.Join(dir, "a"), "bc")
		}, true},
		{"touch", func(t *testing.T, dir string) {
			future := time.Now().Add(time.Hour)
			must(t, os.Chtimes(filepath.Join(dir, "a.txt"), future, future))
		}, false},
		{"chmod", func(t *testing.T, dir string) { must(t, os.Chmod(filepath.Join(dir, "a.txt"), 0o600)) }, false},
		{"chown", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			must(t, os.Chown(filepath.Join(dir, "a.txt"), 65534, 65534))
		}, false},
		{"same bytes rewritten", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "a.txt"), "alpha") }, false},
		{"replaced by a copy", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "a.tmp"), "alpha")
			must(t, os.Rename(filepath.Join(dir, "a.tmp"), filepath.Join(dir, "a.txt")))
		}, false},
		{"empty directory added", func(t *testing.T, dir string) { must(t, os.Mkdir(filepath.Join(dir, "d"), 0o755)) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, base)
			h := New(Options{})
			before := mustScan(t, h, dir)
			tt.mutate(t, dir)
			after := mustScan(t, h, dir)
			if changed := after.Digest != before.Digest; changed != tt.change {
				t.Errorf("digest changed = %v; want %v", changed, tt.change)
			}
			// A fresh Hasher must agree: the digest depends on the tree only.
			if fresh := mustScan(t, New(Options{}), dir); fresh.Digest != after.Digest {
				t.Errorf("fresh digest %x; cached scan said %x", fresh.Digest, after.Digest)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestScanSingleFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app.conf")
	writeFile(t, file, "listen 80\n")
	h := New(Options{})
	snap := mustScan(t, h, file)
	if snap.Kind != KindFile {
		t.Errorf("Kind = %v; want file", snap.Kind)
	}
	if got := paths(snap); !slices.Equal(got, []string{"app.conf"}) {
		t.Errorf("files = %q; want [app.conf]", got)
	}
	// Framed with its base name, a file root hashes like a directory that
	// holds only that file.
	if d := mustScan(t, New(Options{}), dir); d.Digest != snap.Digest {
		t.Errorf("file root digest %x; directory holding it %x", snap.Digest, d.Digest)
	}
	writeFile(t, file, "listen 81\n")
	if next := mustScan(t, h, file); next.Digest == snap.Digest {
		t.Error("content change did not change the digest")
	}
	// Editors and config managers replace files by rename.
	writeFile(t, file+".tmp", "listen 82\n")
	must(t, os.Rename(file+".tmp", file))
	if next := mustScan(t, h, file); next.Files["app.conf"].Digest != xxhash.Sum64String("listen 82\n") {
		t.Error("replacement by rename not seen")
	}
}

func TestScanIncludeExclude(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"nginx.conf": "a", "conf.d/site.conf": "b", "conf.d/site.conf.bak": "c",
		".git/HEAD": "d", "certs/tls.crt": "e", "README": "f",
		"top.pem": "g", "a/b/c/deep.pem": "h", "a/b/other.txt": "i",
	})
	all := []string{".git/HEAD", "README", "a/b/c/deep.pem", "a/b/other.txt", "certs/tls.crt", "conf.d/site.conf", "conf.d/site.conf.bak", "nginx.conf", "top.pem"}
	tests := []struct {
		name             string
		include, exclude []string
		want             []string
	}{
		{"none", nil, nil, all},
		{"include base name", []string{"*.conf"}, nil, []string{"conf.d/site.conf", "nginx.conf"}},
		{"include relative path", []string{"certs/*"}, nil, []string{"certs/tls.crt"}},
		{"one star stays in its directory", []string{"a/*"}, nil, nil},
		{"double star at any depth", []string{"**/*.pem"}, nil, []string{"a/b/c/deep.pem", "top.pem"}},
		{"double star under a directory", []string{"a/**"}, nil, []string{"a/b/c/deep.pem", "a/b/other.txt"}},
		{"double star in the middle", []string{"a/**/*.pem"}, nil, []string{"a/b/c/deep.pem"}},
		{"exclude a deep directory", nil, []string{"a/**/c"}, slices.DeleteFunc(slices.Clone(all), func(p string) bool { return p == "a/b/c/deep.pem" })},
		{"exclude directory", nil, []string{".git"}, []string{"README", "a/b/c/deep.pem", "a/b/other.txt", "certs/tls.crt", "conf.d/site.conf", "conf.d/site.conf.bak", "nginx.conf", "top.pem"}},
		{"both", []string{"*.conf", "*.bak"}, []string{"*.bak"}, []string{"conf.d/site.conf", "nginx.conf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := mustScan(t, New(Options{Include: tt.include, Exclude: tt.exclude}), dir)
			if got := paths(snap); !slices.Equal(got, tt.want) {
				t.Errorf("files = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestValidateGlobs(t *testing.T) {
	tests := []struct {
		globs []string
		ok    bool
	}{
		{nil, true},
		{[]string{"*.conf", "certs/*", "[a-z]?", "**/*.pem", "a/**/b"}, true},
		{[]string{"[a-"}, false},
		{[]string{"ok", ""}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.globs, ","), func(t *testing.T) {
			err := ValidateGlobs(tt.globs)
			if (err == nil) != tt.ok {
				t.Errorf("ValidateGlobs(%q) = %v; want ok=%v", tt.globs, err, tt.ok)
			}
		})
	}
}

func TestScanMaxFiles(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a": "1", "b": "2", "c/d": "3"})
	if _, err := New(Options{MaxFiles: 3}).Scan(context.Background(), dir); err != nil {
		t.Errorf("3 files with MaxFiles 3: %v", err)
	}
	_, err := New(Options{MaxFiles: 2}).Scan(context.Background(), dir)
	if !errors.Is(err, ErrTooManyFiles) {
		t.Fatalf("err = %v; want ErrTooManyFiles", err)
	}
	// The limit is named; how it was configured (MAX_FILES) is added by
	// the main package, which knows.
	var tooMany *TooManyFilesError
	if !errors.As(err, &tooMany) || tooMany.Max != 2 {
		t.Errorf("err = %#v; want a *TooManyFilesError with Max 2", err)
	}
	if msg, want := err.Error(), "scan "+dir+": more than 2 regular files"; msg != want {
		t.Errorf("error %q; want %q", msg, want)
	}
	if got := ErrorKind(err); got != "limit" {
		t.Errorf("ErrorKind = %q; want limit", got)
	}
}

func TestScanMaxFileSize(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"small": "1234", "big": "12345678"})
	var logs logBuffer
	h := agedHasher(Options{MaxFileSize: 8, Logger: testLogger(&logs)})
	first := mustScan(t, h, dir)
	if len(first.Errors) != 0 || first.Files["big"].Size != 8 {
		t.Fatalf("at the limit: files %v errors %v", first.Files, first.Errors)
	}
	writeFile(t, filepath.Join(dir, "big"), "123456789")
	snap := mustScan(t, h, dir)
	if got := errorKinds(snap); !slices.Equal(got, []string{"big=limit"}) {
		t.Errorf("errors = %q; want [big=limit]", got)
	}
	if snap.Files["big"] != first.Files["big"] {
		t.Errorf("big = %+v; want its last good entry %+v", snap.Files["big"], first.Files["big"])
	}
	if snap.BytesRead != 0 {
		t.Errorf("BytesRead = %d; want 0", snap.BytesRead)
	}
	// The limit is named; how it was configured (MAX_FILE_SIZE) is the
	// caller's to add where the error is shown (pollreload's log handler
	// adds a fix attribute to the line the hasher writes).
	var tooLarge *FileTooLargeError
	if len(snap.Errors) != 1 || !errors.As(snap.Errors[0].Err, &tooLarge) || *tooLarge != (FileTooLargeError{Max: 8, Size: 9}) {
		t.Fatalf("errors = %v; want one *FileTooLargeError{Max: 8, Size: 9}", snap.Errors)
	}
	if got, want := tooLarge.Error(), "9 bytes, over the size limit of 8"; got != want {
		t.Errorf("error %q; want %q", got, want)
	}
	if want := `err="9 bytes, over the size limit of 8"`; !strings.Contains(logs.String(), want) {
		t.Errorf("log does not hold the error %s:\n%s", want, logs.String())
	}
}

// TestFileDigestMatchesXxhsum checks File.Digest against the reference
// implementation's command line tool, so digests can be checked by hand.
func TestFileDigestMatchesXxhsum(t *testing.T) {
	xxhsum := testenv.RequireTool(t, "xxhsum", "xxhash")
	dir := t.TempDir()
	big := make([]byte, 3<<20+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	writeTree(t, dir, map[string]string{"empty": "", "small": "hello\n", "big": string(big)})
	snap := mustScan(t, New(Options{}), dir)
	for rel, f := range snap.Files {
		out, err := exec.Command(xxhsum, "-H1", filepath.Join(dir, rel)).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprintf("%016x", f.Digest), strings.Fields(string(out))[0]; got != want {
			t.Errorf("%s: digest %s; xxhsum -H1 says %s", rel, got, want)
		}
	}
}
