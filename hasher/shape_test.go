package hasher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The scanner's cost follows the tree's size, never its shape. These tests
// bound what a scan does by the tree's entries, through scan.work: entries
// looked at, directories listed, cached entries carried over, and the path
// components handed to os.Root to resolve a link. None measures time.

// lastWork returns the work of the last Scan of root.
func (h *Hasher) lastWork(root string) int64 {
	rs := h.state(filepath.Clean(root))
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.work
}

// treeSize counts the entries below root without following links (through
// directory descriptors: a deep tree's paths are longer than PATH_MAX), and
// the path components of every link's path and target.
func treeSize(t testing.TB, root string) (entries, linkParts int) {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(fd, depth int)
	walk = func(fd, depth int) {
		f := os.NewFile(uintptr(fd), "dir")
		defer f.Close()
		des, _ := f.ReadDir(-1) // an unreadable directory has no entries
		for _, de := range des {
			entries++
			switch {
			case de.Type()&fs.ModeSymlink != 0:
				buf := make([]byte, 4096)
				n, err := unix.Readlinkat(fd, de.Name(), buf)
				if err != nil {
					t.Fatal(err)
				}
				linkParts += depth + 1 + components(string(buf[:n]))
			case de.IsDir():
				if sub, err := unix.Openat(fd, de.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
					walk(sub, depth+1)
				}
			}
		}
	}
	walk(fd, 0)
	return entries, linkParts
}

// workBound is the most work a scan of a tree of this size may do: a few
// steps per entry (list, look, carry, forget) and, per link, its path and
// target resolved up to three times (stat, open, follow).
func workBound(entries, linkParts int) int64 {
	return int64(4*entries + 3*linkParts + 16)
}

// checkWork fails the test when the last scan of root did more work than
// its tree's size allows.
func checkWork(t testing.TB, h *Hasher, root, what string) int64 {
	t.Helper()
	entries, linkParts := treeSize(t, root)
	work, bound := h.lastWork(root), workBound(entries, linkParts)
	t.Logf("%s: %d entries, %d link path components: work %d (bound %d)", what, entries, linkParts, work, bound)
	if work > bound {
		t.Errorf("%s: scan work %d; want at most %d for %d entries", what, work, bound, entries)
	}
	return work
}

// makeFanOut builds the tree: n directories d_00..d_NN, each with
// one file, and in each but the last, links a..f -> ../d_{i+1}. Walking
// every path would visit 6^(n-1) directories.
func makeFanOut(t testing.TB, root string, n int) {
	t.Helper()
	for i := range n {
		writeFile(t, filepath.Join(root, fmt.Sprintf("d_%02d", i), "conf"), fmt.Sprintf("file %d\n", i))
	}
	for i := range n - 1 {
		for _, l := range "abcdef" {
			if err := os.Symlink(fmt.Sprintf("../d_%02d", i+1), filepath.Join(root, fmt.Sprintf("d_%02d", i), string(l))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestFanOutWalksEachDirectoryOnce: 13 directories and 72 relative links,
// all inside the root, no cycle. Each directory is walked once; each link is
// an alias naming the directory's own path, and moving, adding or removing
// one changes the digest.
func TestFanOutWalksEachDirectoryOnce(t *testing.T) {
	root := t.TempDir()
	makeFanOut(t, root, 13)
	// Not a timed assertion: a guard so that a regression fails instead of
	// walking 6^12 paths for days.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := New(Options{})
	snap, err := h.Scan(ctx, root)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	checkWork(t, h, root, "fan-out 13")
	if len(snap.Files) != 13 {
		t.Errorf("files = %q; want the 13 d_NN/conf", paths(snap))
	}
	if len(snap.Aliases) != 72 {
		t.Errorf("%d aliases; want 72", len(snap.Aliases))
	}
	if got, want := snap.Aliases["d_00/a"], "d_01"; got != want {
		t.Errorf("alias d_00/a -> %q; want %q (the directory's own path)", got, want)
	}
	if len(snap.Skipped)+len(snap.Errors) != 0 {
		t.Errorf("skipped %v, errors %v; want none", snap.Skipped, snap.Errors)
	}

	steady := mustScan(t, h, root)
	if steady.Digest != snap.Digest {
		t.Errorf("unchanged tree: digest %x, then %x", snap.Digest, steady.Digest)
	}
	checkWork(t, h, root, "fan-out 13, second scan")

	// Retarget one link: the files are the same, the tree is not.
	must(t, os.Remove(filepath.Join(root, "d_03", "c")))
	must(t, os.Symlink("../d_09", filepath.Join(root, "d_03", "c")))
	moved := mustScan(t, h, root)
	if moved.Digest == snap.Digest {
		t.Error("a link moved to another directory; the digest did not change")
	}
	if got := moved.Aliases["d_03/c"]; got != "d_09" {
		t.Errorf("alias d_03/c -> %q; want d_09", got)
	}
	if fresh := mustScan(t, New(Options{}), root); fresh.Digest != moved.Digest {
		t.Errorf("fresh scan digest %x; cached scan said %x", fresh.Digest, moved.Digest)
	}
	added, changed, removed := Diff(snap, moved)
	if !slices.Equal(changed, []string{"d_03/c"}) || len(added)+len(removed) != 0 {
		t.Errorf("Diff = added %q, changed %q, removed %q; want changed [d_03/c]", added, changed, removed)
	}
	must(t, os.Remove(filepath.Join(root, "d_03", "c")))
	if gone := mustScan(t, h, root); gone.Digest == moved.Digest || gone.Digest == snap.Digest {
		t.Error("a link removed; the digest did not change")
	}
}

// TestLinkOnlyDirectoryIsWalkedAtTheLink: a directory the physical walk
// leaves out (excluded by name) but a link reaches is walked once, at the
// link's path; a second link to it is an alias of that path.
func TestLinkOnlyDirectoryIsWalkedAtTheLink(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"hidden/deep.txt": "deep", "top.txt": "top"})
	must(t, os.Symlink("hidden", filepath.Join(root, "a")))
	must(t, os.Symlink("a", filepath.Join(root, "b")))
	snap := mustScan(t, New(Options{Exclude: []string{"hidden"}}), root)
	if got, want := paths(snap), []string{"a/deep.txt", "top.txt"}; !slices.Equal(got, want) {
		t.Errorf("files = %q; want %q", got, want)
	}
	if got, want := aliases(snap), []string{"b=a"}; !slices.Equal(got, want) {
		t.Errorf("aliases = %q; want %q", got, want)
	}
}

// TestBindMountOfAnAncestorIsAnAlias: a bind mount inside the root of the
// root itself has the root's device and inode: it is an alias of ".",
// walked no further.
func TestBindMountOfAnAncestorIsAnAlias(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	root := t.TempDir()
	writeTree(t, root, map[string]string{"app.conf": "x", "mnt/.keep": ""})
	mnt := filepath.Join(root, "mnt")
	if err := unix.Mount(root, mnt, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	h := New(Options{})
	snap := mustScan(t, h, root)
	if got, want := paths(snap), []string{"app.conf"}; !slices.Equal(got, want) {
		t.Errorf("files = %q; want %q", got, want)
	}
	if got, want := aliases(snap), []string{"mnt=."}; !slices.Equal(got, want) {
		t.Errorf("aliases = %q; want %q", got, want)
	}
}

// asNobody runs f on an OS thread of its own whose filesystem user and group
// IDs are 65534, so that permission bits apply to it while the test runs as
// root: setfsuid(2) changes the calling thread only, and moving it off 0
// drops that thread's CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. The
// goroutine never unlocks its thread, so the thread ends with it and no
// other goroutine ever runs with those IDs. (f must not hand file work to
// other goroutines: the hasher does so only for files of 8 MiB or more.)
func asNobody(t *testing.T, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		f() // unprivileged already
		return
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		unix.RawSyscall(unix.SYS_SETFSGID, 65534, 0, 0)
		unix.RawSyscall(unix.SYS_SETFSUID, 65534, 0, 0)
		// setfsuid(-1) changes nothing and returns the current ID.
		if cur, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0); cur != 65534 {
			done <- fmt.Errorf("setfsuid: filesystem uid is %d, not 65534", cur)
			return
		}
		f()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// scratch returns an empty directory on tmpfs (/dev/shm) when there is one,
// where making thousands of files takes milliseconds instead of seconds of
// a shared disk, else t.TempDir().
func scratch(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "hasher-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// openToNobody makes dir and its parents up to the test's temporary
// directory traversable by others (t.TempDir makes them 0700).
func openToNobody(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != "/" && d != os.TempDir() && d != "/dev/shm"; d = filepath.Dir(d) {
		must(t, os.Chmod(d, 0o755))
	}
}

// TestUnreadableDirectoriesCostLinear: 5,000 files beside 500
// directories that become unreadable (mode 000, scanned as uid 65534). Each
// unreadable directory carries its own last good files over, found by
// binary search: the scan's work follows the tree, not unreadable × files.
func TestUnreadableDirectoriesCostLinear(t *testing.T) {
	const dirs, perDir, locked = 50, 100, 500
	root := filepath.Join(scratch(t), "root")
	for d := range dirs {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", d))
		must(t, os.MkdirAll(dir, 0o755))
		for f := range perDir {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.conf", f)), []byte{byte(f)}, 0o644))
		}
	}
	for u := range locked {
		writeFile(t, filepath.Join(root, fmt.Sprintf("u%04d", u), "secret.conf"), fmt.Sprint(u))
	}
	openToNobody(t, root)
	h := New(Options{})
	var first, second, third *Snapshot
	scan := func() *Snapshot {
		var snap *Snapshot
		var err error
		asNobody(t, func() { snap, err = h.Scan(context.Background(), root) })
		if err != nil {
			t.Fatalf("Scan as uid 65534: %v", err)
		}
		return snap
	}
	first = scan()
	if len(first.Files) != dirs*perDir+locked || len(first.Errors) != 0 {
		t.Fatalf("readable tree: %d files, errors %v; want %d, none", len(first.Files), first.Errors, dirs*perDir+locked)
	}
	for u := range locked {
		must(t, os.Chmod(filepath.Join(root, fmt.Sprintf("u%04d", u)), 0))
	}
	t.Cleanup(func() {
		for u := range locked {
			os.Chmod(filepath.Join(root, fmt.Sprintf("u%04d", u)), 0o755)
		}
	})
	second = scan()
	if len(second.Errors) != locked || second.Errors[0].Kind != "permission" {
		t.Fatalf("%d errors (first %v); want %d of kind permission", len(second.Errors), second.Errors[:min(1, len(second.Errors))], locked)
	}
	if second.Digest != first.Digest || len(second.Files) != len(first.Files) {
		t.Errorf("unreadable directories changed the snapshot: %d files; want the last good %d", len(second.Files), len(first.Files))
	}
	checkWork(t, h, root, "500 unreadable directories beside 5,000 files")
	third = scan()
	if third.Digest != first.Digest {
		t.Error("a steady scan with unreadable directories changed the digest")
	}
	checkWork(t, h, root, "500 unreadable directories, steady")
}

// makeChain creates depth nested directories named "dir" below root with
// one file at the bottom, through directory descriptors (the path is far
// longer than PATH_MAX), and returns the file's relative path.
func makeChain(t testing.TB, root string, depth int) string {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range depth {
		if err := unix.Mkdirat(fd, "dir", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, "dir", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	defer unix.Close(fd)
	ffd, err := unix.Openat(fd, "bottom.conf", unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	unix.Write(ffd, []byte("deep\n"))
	unix.Close(ffd)
	return strings.Repeat("dir/", depth) + "bottom.conf"
}

// scanAllocated returns the bytes allocated by one Scan of root.
func scanAllocated(t *testing.T, h *Hasher, root string) int64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	mustScan(t, h, root)
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc - before.TotalAlloc)
}

// TestDeepChainIsLinear: one file at the bottom of 2,000 nested directories,
// with no depth bound. A scan keeps one path buffer, not a path string per
// directory, so a steady scan allocates far less than the 8 MB that a path
// per level would add up to (2,000 levels × 4 bytes × 2,000 / 2), and its
// work follows the number of directories.
func TestDeepChainIsLinear(t *testing.T) {
	const depth = 2000
	root := scratch(t)
	rel := makeChain(t, root, depth)
	h := agedHasher(Options{})
	snap := mustScan(t, h, root)
	if got := paths(snap); len(got) != 1 || got[0] != rel {
		t.Fatalf("files = %d paths; want the one at depth %d", len(got), depth)
	}
	checkWork(t, h, root, "2,000 nested directories")
	mustScan(t, h, root) // settle the cache
	allocated := scanAllocated(t, h, root)
	t.Logf("steady scan of %d nested directories allocated %d bytes", depth, allocated)
	if bound := int64(64 * depth); allocated > bound {
		t.Errorf("steady scan of %d nested directories allocated %d bytes; want at most %d (linear in depth)", depth, allocated, bound)
	}
}

// TestMaxDepth: a directory deeper than MaxDepth is not walked; it is one
// limit error naming its path, while the rest of the tree is hashed.
func TestMaxDepth(t *testing.T) {
	root := t.TempDir()
	makeChain(t, root, 40)
	writeFile(t, filepath.Join(root, "top.conf"), "top")
	writeFile(t, filepath.Join(root, strings.Repeat("dir/", DefaultMaxDepth), "at-the-limit.conf"), "ok")
	// A link to the chain's top from deep inside reaches no further.
	must(t, os.Symlink(strings.Repeat("../", DefaultMaxDepth-1)+"dir", filepath.Join(root, strings.Repeat("dir/", DefaultMaxDepth-1)+"up")))
	var logs logBuffer
	h := New(Options{MaxDepth: DefaultMaxDepth, Logger: testLogger(&logs)})
	snap := mustScan(t, h, root)
	want := []string{strings.Repeat("dir/", DefaultMaxDepth) + "at-the-limit.conf", "top.conf"}
	if got := paths(snap); !slices.Equal(got, want) {
		t.Errorf("files = %q; want %q", got, want)
	}
	tooDeep := strings.Repeat("dir/", DefaultMaxDepth) + "dir"
	if got := errorKinds(snap); !slices.Equal(got, []string{tooDeep + "=limit"}) {
		t.Fatalf("errors = %q; want [%s=limit]", got, tooDeep)
	}
	var te *TooDeepError
	if !errors.As(snap.Errors[0].Err, &te) || te.Max != DefaultMaxDepth || !errors.Is(snap.Errors[0].Err, ErrTooDeep) {
		t.Errorf("error %#v; want a *TooDeepError with Max %d", snap.Errors[0].Err, DefaultMaxDepth)
	}
	if got := aliases(snap); len(got) != 1 || !strings.HasSuffix(got[0], "up=dir") {
		t.Errorf("aliases = %q; want the up link as an alias of dir", got)
	}
	if want := fmt.Sprintf("directory nested more than %d levels below the root, not walked", DefaultMaxDepth); !strings.Contains(logs.String(), want) {
		t.Errorf("log does not say %q:\n%s", want, logs.String())
	}
}

// TestMaxTotalSize: a root whose files add up to more than MaxTotalSize
// fails before reading past it; the error is of kind limit.
func TestMaxTotalSize(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a": strings.Repeat("a", 600), "b": strings.Repeat("b", 600)})
	if _, err := New(Options{MaxTotalSize: 1200}).Scan(context.Background(), root); err != nil {
		t.Errorf("1,200 bytes with MaxTotalSize 1200: %v", err)
	}
	_, err := New(Options{MaxTotalSize: 1000}).Scan(context.Background(), root)
	var tl *TotalTooLargeError
	if !errors.As(err, &tl) || tl.Max != 1000 || ErrorKind(err) != "limit" {
		t.Fatalf("err = %v; want a *TotalTooLargeError with Max 1000, kind limit", err)
	}
	if want := "scan " + root + ": regular files add up to more than 1000 bytes"; err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
	// Cached files count too: a steady scan is held to the same bound.
	h := agedHasher(Options{MaxTotalSize: 1200})
	mustScan(t, h, root)
	writeFile(t, filepath.Join(root, "0"), "x")
	if _, err := h.Scan(context.Background(), root); !errors.Is(err, ErrTotalTooLarge) {
		t.Errorf("one byte more beside cached files: err = %v; want ErrTotalTooLarge", err)
	}
}

// TestMaxFilesCountsOtherEntries: directories, links and special files are
// bounded by MaxFiles as well (each costs a syscall per scan), apart from
// the regular files.
func TestMaxFilesCountsOtherEntries(t *testing.T) {
	root := t.TempDir()
	for i := range 5 {
		must(t, os.Mkdir(filepath.Join(root, fmt.Sprintf("empty%d", i)), 0o755))
	}
	writeFile(t, filepath.Join(root, "one.conf"), "1")
	_, err := New(Options{MaxFiles: 4}).Scan(context.Background(), root)
	var tm *TooManyFilesError
	if !errors.As(err, &tm) || !tm.Other || ErrorKind(err) != "limit" {
		t.Fatalf("err = %v; want a *TooManyFilesError for other entries", err)
	}
	if want := "more than 4 directories, symlinks and other entries that are not regular files"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q; want it to say %q", err, want)
	}
	if _, err := New(Options{MaxFiles: 5}).Scan(context.Background(), root); err != nil {
		t.Errorf("5 directories and 1 file with MaxFiles 5: %v", err)
	}
}

// bindMount bind-mounts source on target (a directory or a file) for the
// test; it needs root.
func bindMount(t *testing.T, source, target string) {
	t.Helper()
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount %s: %v", source, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", target, err)
		}
	})
}

// TestPseudoFilesystemBelowRootIsSkipped bind-mounts proc (a directory),
// sysfs, and /proc/self/pagemap (a file that never ends) below a watched
// root, plus a link into the proc mount. None is read: each is skipped with
// the filesystem's name, as CONFIG_DIR on proc is refused at start, and
// the scan reads only the real file.
func TestPseudoFilesystemBelowRootIsSkipped(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	root := t.TempDir()
	writeTree(t, root, map[string]string{"app.conf": "listen 80\n", "pagemap": ""})
	for _, d := range []string{"proc", "sys"} {
		must(t, os.Mkdir(filepath.Join(root, d), 0o755))
	}
	bindMount(t, "/proc", filepath.Join(root, "proc"))
	bindMount(t, "/sys", filepath.Join(root, "sys"))
	bindMount(t, "/proc/self/pagemap", filepath.Join(root, "pagemap"))
	must(t, os.Symlink("proc/self", filepath.Join(root, "self")))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a guard, not an assertion
	defer cancel()
	var logs logBuffer
	h := New(Options{Logger: testLogger(&logs), MaxFileSize: DefaultMaxFileSize})
	snap, err := h.Scan(ctx, root)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if got, want := paths(snap), []string{"app.conf"}; !slices.Equal(got, want) {
		t.Errorf("files = %q; want %q", got, want)
	}
	var got []string
	for _, sk := range snap.Skipped {
		got = append(got, sk.Path+"="+sk.Reason+":"+sk.Detail)
	}
	slices.Sort(got)
	want := []string{"pagemap=pseudo_filesystem:proc", "proc=pseudo_filesystem:proc", "self=pseudo_filesystem:proc", "sys=pseudo_filesystem:sysfs"}
	if !slices.Equal(got, want) {
		t.Errorf("skipped = %q; want %q", got, want)
	}
	if snap.BytesRead != int64(len("listen 80\n")) {
		t.Errorf("read %d bytes; want only app.conf's", snap.BytesRead)
	}
	if !strings.Contains(logs.String(), "fs=proc") || !strings.Contains(logs.String(), "kernel pseudo-filesystem") {
		t.Errorf("log does not name the pseudo-filesystem:\n%s", logs.String())
	}
	if len(snap.Errors) != 0 {
		t.Errorf("errors = %v; want none", snap.Errors)
	}
}

// TestKubeletVersionWithALink: inside a kubelet volume's version directory
// a link to a directory of the version is an alias as in a plain tree, and
// the idle tick's reuse of an unchanged version keeps it.
func TestKubeletVersionWithALink(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"..2026_01_01_00_00_00.1/conf/app.conf": "v1"})
	must(t, os.Symlink("conf", filepath.Join(root, "..2026_01_01_00_00_00.1", "current")))
	must(t, os.Symlink("..2026_01_01_00_00_00.1", filepath.Join(root, "..data")))
	must(t, os.Symlink("..data/conf", filepath.Join(root, "conf")))
	must(t, os.Symlink("..data/current", filepath.Join(root, "current")))
	h := agedHasher(Options{})
	first := mustScan(t, h, root)
	if first.Kind != KindKubelet {
		t.Fatalf("kind %v; want kubelet", first.Kind)
	}
	if got, want := paths(first), []string{"conf/app.conf"}; !slices.Equal(got, want) {
		t.Errorf("files = %q; want %q", got, want)
	}
	if got, want := aliases(first), []string{"current=conf"}; !slices.Equal(got, want) {
		t.Errorf("aliases = %q; want %q", got, want)
	}
	second := mustScan(t, h, root) // reads nothing: the one to reuse
	if second.Digest != first.Digest || second.BytesRead != 0 {
		t.Fatalf("second scan: digest %x read %d; want %x, 0", second.Digest, second.BytesRead, first.Digest)
	}
	if third := mustScan(t, h, root); third != second {
		t.Errorf("an unchanged version gave a new snapshot; want the last one reused")
	}
}
