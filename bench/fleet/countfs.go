package main

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// kind is a class of FUSE request the server counts.
type kind int

// The requests that stand for what an NFS server is asked: a name looked up,
// attributes fetched, a file or directory opened, content read, a directory
// listed, a symlink read. Everything else the kernel sends (flush, release,
// statfs, access, xattrs) is "other".
const (
	kLookup kind = iota
	kGetattr
	kOpen
	kRead
	kReaddir
	kReadlink
	kOther
	nKinds
)

var kindNames = [nKinds]string{"lookup", "getattr", "open", "read", "readdir", "readlink", "other"}

// bucketWidth is the resolution of the load-over-time record.
const bucketWidth = 100 * time.Millisecond

// server is the one "file server" every mount answers for: it counts the
// requests of all mounts, per 100 ms bucket and per mount.
type server struct {
	start   time.Time
	buckets []atomic.Int64 // counted requests (not "other") per bucketWidth since start
}

func newServer(length time.Duration) *server {
	return &server{start: time.Now(), buckets: make([]atomic.Int64, int(length/bucketWidth)+1)}
}

// restart begins a new record of buckets (one per configuration).
func (s *server) restart(length time.Duration) {
	s.buckets = make([]atomic.Int64, int(length/bucketWidth)+1)
	s.start = time.Now()
}

// mount is one FUSE mount of the shared backing tree: one per replica, as
// each node of a fleet has its own NFS client and its own attribute cache.
type mount struct {
	srv    *server
	dir    string
	fsrv   *fuse.Server
	counts [nKinds]atomic.Int64

	// Scans: every poller, pollreload and naive alike, opens the root of
	// the tree it watches once per scan, so the opens of each tree's root
	// directory count its scans.
	mu    sync.Mutex
	roots map[uint64]string // node ID of a tree's root → tree name
	scans map[string]int64
}

// scanCount returns how many scans of tree the mount has seen.
func (m *mount) scanCount(tree string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.scans[tree]
}

func (m *mount) count(k kind) {
	m.counts[k].Add(1)
	if k == kOther {
		return
	}
	if i := int(time.Since(m.srv.start) / bucketWidth); i >= 0 && i < len(m.srv.buckets) {
		m.srv.buckets[i].Add(1)
	}
}

// snapshot returns the mount's totals so far.
func (m *mount) snapshot() [nKinds]int64 {
	var c [nKinds]int64
	for k := range c {
		c[k] = m.counts[k].Load()
	}
	return c
}

// counting wraps go-fuse's node filesystem at the protocol level, so each
// request the kernel sends is counted once, whatever the node layer does
// with it.
type counting struct {
	fuse.RawFileSystem
	m *mount
}

func (c *counting) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	c.m.count(kLookup)
	st := c.RawFileSystem.Lookup(cancel, h, name, out)
	if st == fuse.OK && h.NodeId == fuse.FUSE_ROOT_ID {
		c.m.mu.Lock()
		c.m.roots[out.NodeId] = name
		c.m.mu.Unlock()
	}
	return st
}

func (c *counting) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	c.m.count(kGetattr)
	return c.RawFileSystem.GetAttr(cancel, in, out)
}

func (c *counting) Statx(cancel <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	c.m.count(kGetattr)
	return c.RawFileSystem.Statx(cancel, in, out)
}

func (c *counting) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	c.m.count(kOpen)
	return c.RawFileSystem.Open(cancel, in, out)
}

func (c *counting) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	c.m.count(kOpen)
	c.m.mu.Lock()
	if tree, ok := c.m.roots[in.NodeId]; ok {
		c.m.scans[tree]++
	}
	c.m.mu.Unlock()
	return c.RawFileSystem.OpenDir(cancel, in, out)
}

func (c *counting) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	c.m.count(kRead)
	return c.RawFileSystem.Read(cancel, in, buf)
}

func (c *counting) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	c.m.count(kReaddir)
	return c.RawFileSystem.ReadDir(cancel, in, out)
}

func (c *counting) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	c.m.count(kReaddir)
	return c.RawFileSystem.ReadDirPlus(cancel, in, out)
}

func (c *counting) Readlink(cancel <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	c.m.count(kReadlink)
	return c.RawFileSystem.Readlink(cancel, h)
}

func (c *counting) Access(cancel <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	c.m.count(kOther)
	return c.RawFileSystem.Access(cancel, in)
}

func (c *counting) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	c.m.count(kOther)
	return c.RawFileSystem.Flush(cancel, in)
}

func (c *counting) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	c.m.count(kOther)
	c.RawFileSystem.Release(cancel, in)
}

func (c *counting) ReleaseDir(in *fuse.ReleaseIn) {
	c.m.count(kOther)
	c.RawFileSystem.ReleaseDir(in)
}

func (c *counting) StatFs(cancel <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	c.m.count(kOther)
	return c.RawFileSystem.StatFs(cancel, h, out)
}

func (c *counting) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	c.m.count(kOther)
	return c.RawFileSystem.GetXAttr(cancel, h, attr, dest)
}

// mountCounting mirrors backing at dir (which must exist) through a counting
// loopback. cache is the kernel's entry and attribute timeout: 0 asks the
// server about every lookup and stat, like NFS's noac; 1 s is like a short
// actimeo. Reads go through the page cache, which the kernel drops on every
// open (no keep_cache), so each open that reads reaches the server, as the
// naive poller's reads of an NFS file do when its attributes moved.
func (s *server) mountCounting(backing, dir string, cache time.Duration) (*mount, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("stat backing directory: %w", err)
	}
	root := &node{LoopbackNode: &fs.LoopbackNode{RootData: &fs.LoopbackRoot{Path: backing, Dev: st.Dev}}}
	root.RootData.RootNode = root
	opts := &fs.Options{
		EntryTimeout:    &cache,
		AttrTimeout:     &cache,
		NegativeTimeout: &cache,
		MountOptions: fuse.MountOptions{
			FsName:        "countfs",
			Name:          "countfs",
			MaxBackground: 64,
			DisableXAttrs: true,
			DirectMount:   true,
		},
	}
	m := &mount{srv: s, dir: dir, roots: map[uint64]string{}, scans: map[string]int64{}}
	raw := &counting{RawFileSystem: fs.NewNodeFS(root, opts), m: m}
	fsrv, err := fuse.NewServer(raw, dir, &opts.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	go fsrv.Serve()
	if err := fsrv.WaitMount(); err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	m.fsrv = fsrv
	return m, nil
}

// unmount detaches the mount, lazily if a process still holds it. It does
// not use fuse.Server.Unmount, which then waits for the server's read loops
// to end and was seen to wait forever after a run of 200 mounts; the loops
// end with the process.
func (m *mount) unmount() error {
	if err := syscall.Unmount(m.dir, 0); err == nil {
		return nil
	}
	if err := syscall.Unmount(m.dir, syscall.MNT_DETACH); err == nil {
		return nil
	}
	out, err := exec.Command("fusermount", "-u", "-z", m.dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("unmount %s: %v: %s", m.dir, err, out)
	}
	return nil
}

// node is a loopback node whose open files are always read through the
// server: go-fuse's loopback would otherwise hand the kernel the backing
// file (FUSE passthrough) and no read would ever be counted.
type node struct {
	*fs.LoopbackNode
}

var (
	_ fs.NodeWrapChilder = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
)

// WrapChild makes every node the loopback creates one of ours.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode)}
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &file{LoopbackFile: fh.(*fs.LoopbackFile)}, fuseFlags, 0
}

// file is an open loopback file without a passthrough descriptor.
type file struct {
	*fs.LoopbackFile
}

// PassthroughFd hides the embedded method, so the kernel sends every read.
func (f *file) PassthroughFd() (int, bool) { return -1, false }
