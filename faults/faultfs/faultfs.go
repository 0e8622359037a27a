// Package faultfs is a loopback FUSE filesystem for tests that can make
// chosen operations on chosen paths fail with an errno or hang.
//
// It mirrors a backing directory at a mount point. Tests switch faults on and
// off while a program under test keeps reading the mount, which is how NFS,
// SMB and FUSE volumes misbehave in production: a stale handle, a dropped
// connection, a permission flip, an I/O error, a server that stops answering.
//
//	fsys, err := faultfs.Mount(backing, mountpoint)
//	...
//	defer fsys.Unmount()
//	fsys.Fail("app.conf", faultfs.OpRead, syscall.EIO)
//	fsys.Hang(faultfs.AnyPath, faultfs.OpGetattr)
//	fsys.Clear() // heal everything and release hung callers
//
// The kernel is told to cache nothing (entry, attribute and negative timeouts
// of zero, direct I/O on every open), so each stat and read of the program
// under test reaches the switches. It is meant for tests only; nothing in the
// pollreload binary imports it.
package faultfs

import (
	"context"
	"fmt"
	"os/exec"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Op is one kind of filesystem request a fault can be attached to.
type Op string

// The operations faults can be attached to. OpStat is shorthand for both
// OpLookup and OpGetattr, which are the two ways the kernel asks for a
// file's attributes.
const (
	OpLookup   Op = "lookup"
	OpGetattr  Op = "getattr"
	OpStat     Op = "stat"
	OpOpen     Op = "open"
	OpRead     Op = "read"
	OpReaddir  Op = "readdir"
	OpReadlink Op = "readlink"
)

// AnyPath makes a fault apply to every path, the root included.
const AnyPath = "*"

// fault is what happens when a switched-on (path, op) pair is hit.
type fault struct {
	errno syscall.Errno // returned when hang is false
	hang  bool
}

type key struct {
	path string
	op   Op
}

// FS is a mounted fault-injecting loopback filesystem. Its methods are safe
// for concurrent use.
type FS struct {
	server     *fuse.Server
	mountpoint string

	mu      sync.Mutex
	faults  map[key]fault
	hits    map[key]int
	release chan struct{} // closed to let every hung request return
	hung    int           // requests blocked right now
}

// Mount mirrors the directory backing at mountpoint, which must exist, and
// serves it until Unmount.
func Mount(backing, mountpoint string) (*FS, error) {
	f := &FS{
		mountpoint: mountpoint,
		faults:     make(map[key]fault),
		hits:       make(map[key]int),
		release:    make(chan struct{}),
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("stat backing directory: %w", err)
	}
	root := &node{
		LoopbackNode: &fs.LoopbackNode{RootData: &fs.LoopbackRoot{Path: backing, Dev: st.Dev}},
		fsys:         f,
	}
	root.RootData.RootNode = root
	// Zero timeouts: the kernel must ask us every time, or a fault switched
	// on after a cached answer would go unseen.
	var zero time.Duration
	opts := &fs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			FsName: "faultfs",
			Name:   "faultfs",
			// Requests are served concurrently, so one hung read does not
			// stall the stats of other files.
			MaxBackground: 64,
		},
	}
	server, err := fs.Mount(mountpoint, root, opts)
	if err != nil {
		return nil, fmt.Errorf("mount faultfs at %s: %w", mountpoint, err)
	}
	f.server = server
	return f, nil
}

// Fail makes op on p fail with errno until the fault is cleared. p is the
// slash-separated path relative to the mount root ("" for the root itself),
// or AnyPath. A fault on an exact path wins over one on AnyPath.
func (f *FS) Fail(p string, op Op, errno syscall.Errno) {
	f.set(p, op, fault{errno: errno})
}

// Hang makes op on p block until Clear or Unmount, the way a request to an
// unreachable NFS server on a hard mount does. Signals do not unblock it.
func (f *FS) Hang(p string, op Op) {
	f.set(p, op, fault{hang: true})
}

func (f *FS) set(p string, op Op, flt fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range expand(op) {
		f.faults[key{p, o}] = flt
	}
}

// Clear switches every fault off and lets hung requests return (with EIO,
// as a server that times out a request would).
func (f *FS) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.faults)
	close(f.release)
	f.release = make(chan struct{})
}

// Hits reports how many requests a fault on (p, op) has answered so far,
// counted whether or not it is still switched on. OpStat sums lookups and
// getattrs. Tests use it to prove that the program under test really met the
// fault.
func (f *FS) Hits(p string, op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, o := range expand(op) {
		n += f.hits[key{p, o}]
	}
	return n
}

// Hung reports how many requests are blocked in a Hang fault right now.
func (f *FS) Hung() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hung
}

// Unmount releases hung requests and unmounts. If the mount is busy it is
// detached lazily, so a test never leaves a mount behind.
func (f *FS) Unmount() error {
	f.Clear()
	err := f.server.Unmount()
	if err == nil {
		return nil
	}
	out, lazyErr := exec.Command("fusermount", "-u", "-z", f.mountpoint).CombinedOutput()
	if lazyErr != nil {
		return fmt.Errorf("unmount %s: %w (lazy: %v: %s)", f.mountpoint, err, lazyErr, out)
	}
	return nil
}

func expand(op Op) []Op {
	if op == OpStat {
		return []Op{OpLookup, OpGetattr}
	}
	return []Op{op}
}

// check applies the fault switched on for (p, op), if any: it returns the
// errno to answer with, 0 to proceed normally, after blocking if the fault
// is a hang.
func (f *FS) check(p string, op Op) syscall.Errno {
	f.mu.Lock()
	k := key{p, op}
	flt, ok := f.faults[k]
	if !ok {
		k = key{AnyPath, op}
		flt, ok = f.faults[k]
	}
	if !ok {
		f.mu.Unlock()
		return 0
	}
	f.hits[k]++
	if !flt.hang {
		f.mu.Unlock()
		return flt.errno
	}
	f.hung++
	release := f.release
	f.mu.Unlock()

	<-release

	f.mu.Lock()
	f.hung--
	f.mu.Unlock()
	return syscall.EIO
}

// node is a loopback node whose requests pass the fault switches first.
type node struct {
	*fs.LoopbackNode
	fsys *FS
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeReaddirer      = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
)

// WrapChild makes every node the loopback creates one of ours.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), fsys: n.fsys}
}

// rel returns the node's path relative to the mount root, "" for the root.
func (n *node) rel() string {
	return n.Path(n.Root())
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.fsys.check(path.Join(n.rel(), name), OpLookup); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Lookup(ctx, name, out)
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if errno := n.fsys.check(n.rel(), OpGetattr); errno != 0 {
		return errno
	}
	return n.LoopbackNode.Getattr(ctx, fh, out)
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	p := n.rel()
	if errno := n.fsys.check(p, OpOpen); errno != 0 {
		return nil, 0, errno
	}
	fh, _, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	// Direct I/O: every read reaches Read below instead of the page cache.
	return &file{LoopbackFile: fh.(*fs.LoopbackFile), fsys: n.fsys, path: p}, fuse.FOPEN_DIRECT_IO, 0
}

// OpendirHandle is where the kernel's readdir starts: the loopback answers
// it with a stream over the backing directory and never calls Readdir.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.fsys.check(n.rel(), OpReaddir); errno != 0 {
		return nil, 0, errno
	}
	return n.LoopbackNode.OpendirHandle(ctx, flags)
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	if errno := n.fsys.check(n.rel(), OpReaddir); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Readdir(ctx)
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if errno := n.fsys.check(n.rel(), OpReadlink); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Readlink(ctx)
}

// file is an open loopback file whose reads pass the fault switches. It
// deliberately does not offer a passthrough fd, which would let the kernel
// read the backing file without asking us.
type file struct {
	*fs.LoopbackFile
	fsys *FS
	path string
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
)

func (f *file) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if errno := f.fsys.check(f.path, OpRead); errno != 0 {
		return nil, errno
	}
	return f.LoopbackFile.Read(ctx, buf, off)
}

// PassthroughFd hides the embedded method so the kernel never bypasses Read.
func (f *file) PassthroughFd() (int, bool) { return -1, false }
