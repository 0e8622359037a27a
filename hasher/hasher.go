package hasher

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"

	"github.com/pollreload/pollreload/internal/filetype"
	"github.com/pollreload/pollreload/internal/logs"
)

// Options configures a Hasher.
type Options struct {
	// Logger receives warnings about skipped entries and unreadable files,
	// each logged once when it first appears. Nil discards.
	Logger *slog.Logger
	// MaxFiles caps the regular files of one root, and separately its other
	// entries (directories, symlinks, special files, excluded files); 0 means
	// no limit. A root with more makes Scan fail with an error wrapping
	// ErrTooManyFiles. DefaultMaxFiles is the daemon's default.
	MaxFiles int
	// MaxFileSize caps the size of a file that is read; 0 means no limit. A
	// larger file is never read: it is reported as a ScanError of kind
	// "limit" and keeps its last good entry, if any.
	MaxFileSize int64
	// MaxDepth caps how many directory levels below the root are walked; 0
	// means no limit. A deeper directory is not walked: it is reported as a
	// ScanError of kind "limit" (a *TooDeepError) and its files keep their
	// last good entries.
	MaxDepth int
	// MaxTotalSize caps the summed size of the regular files of one root,
	// and so the bytes one scan can read; 0 means no limit. A root with more
	// makes Scan fail with an error wrapping ErrTotalTooLarge.
	MaxTotalSize int64
	// Include, if not empty, keeps only files whose relative path or base
	// name matches one of these globs (path.Match syntax, plus "**" for any
	// number of directories; see glob.go). Exclude drops files and whole
	// directories that match. Check them with ValidateGlobs first.
	Include, Exclude []string
	// VerifyAfter, if positive, is the age at which a cached digest is
	// distrusted and the file read again even though its stat signature is
	// unchanged. It bounds how long a rewrite that stat cannot see (same
	// size, mtime restored, on a filesystem without ctime such as sshfs)
	// goes unnoticed. Each Hasher draws its own age between half of this
	// and this, so that a fleet of replicas started together does not
	// re-read every file in the same tick.
	VerifyAfter time.Duration
}

// Hasher scans roots into Snapshots and remembers, per root and file, what it
// last hashed so that unchanged files are not read again.
//
// Scan may be called from several goroutines at once; scans of the same root
// are serialized, scans of different roots run in parallel.
type Hasher struct {
	opts Options
	log  *slog.Logger

	// now and racyMargin decide when a cached digest may be trusted; tests
	// move the clock instead of sleeping.
	now        func() time.Time
	racyMargin time.Duration
	// rewalk is this Hasher's age at which an unchanged kubelet version
	// is walked again, drawn in [kubeletRewalk/2, kubeletRewalk];
	// verifyAfter its age of distrust, drawn in [VerifyAfter/2,
	// VerifyAfter] (0: never). Drawn per process, so that replicas started
	// together do not all walk, or all read every file, in the same tick.
	rewalk      time.Duration
	verifyAfter time.Duration
	// forceOpenStat makes every directory behave as if it were on NFS, so
	// the openat+fstat path is tested on local disks.
	forceOpenStat bool
	// afterList, if set, runs after a directory was listed and before its
	// entries are examined; tests use it to change the tree mid-walk.
	afterList func(dirRel string)

	mu    sync.Mutex
	roots map[string]*rootState
}

// New returns a Hasher with an empty cache.
func New(opts Options) *Hasher {
	log := logs.OrDiscard(opts.Logger)
	return &Hasher{
		opts:        opts,
		log:         log,
		now:         time.Now,
		racyMargin:  defaultRacyMargin,
		rewalk:      drawAge(kubeletRewalk),
		verifyAfter: drawAge(opts.VerifyAfter),
		roots:       make(map[string]*rootState),
	}
}

// rootState is everything a Hasher keeps between scans of one root.
type rootState struct {
	mu     sync.Mutex
	cache  map[string]*entry
	gen    uint64
	buf    []byte   // content read buffer
	chunks [][]byte // readPipelined's buffers, made on the first large file
	digest *xxhash.Digest
	// dentBuf receives raw getdents records.
	dentBuf []byte
	// prev is the last finished scan's file list, sorted by path: what a
	// directory that cannot be read now carries over, found by binary
	// search. spare is the other buffer, filled by the next scan.
	prev, spare []*entry
	// prevAliases is the last finished scan's Aliases, sorted by path.
	prevAliases, spareAliases []Alias
	// visited maps every directory walked in this attempt (device, inode)
	// to its node; nodes and links are the attempt's scratch (see walk.go).
	visited map[devIno]int32
	nodes   []dirNode
	links   []dirLink
	path    []byte
	// work is what the last Scan did, in steps (see scan.work).
	work int64
	// reported holds the skips and errors already logged, so a broken link
	// is logged when it appears, not on every tick.
	reported map[string]string
	// mount tells an unmounted filesystem from a tree whose files were
	// deleted.
	mount mountState
	// linksDone is the last kubelet data directory whose visible links
	// were all found.
	linksDone string

	// What a steady tick reuses, so that it allocates nothing: the root's
	// and its parent's names for syscalls, the listing's names, scratch
	// slices, the `..data` target last read and the path it makes, and the
	// last snapshot, returned again while nothing changed.
	croot, cparent cstr
	interned       interner
	names          []dirent
	key            []byte
	errors         []ScanError
	skipped        []Skip
	linkBuf        []byte
	dataTarget     cstr
	// cdataLink is root/..data; ctargetPath root/dataTarget; notLink says
	// the root itself was no symlink at the last scan. With them an idle
	// tick of a kubelet volume needs no descriptor (see quickKubelet).
	cdataLink   cstr
	ctargetPath cstr
	notLink     bool
	dataRoot    string // rootPath for dataRootFor and dataSub
	dataRootFor cstr
	dataSub     string
	last        *Snapshot
	// fsType is the filesystem type (statfs f_type) of mount fsMount.
	fsType  int64
	fsMount uint64
	// version is the kubelet version directory last walked in full, at
	// versionWalked (ns).
	version       version
	versionWalked int64
	// raw: the last scan found a kubelet volume on a filesystem where a
	// syscall cannot hang (rawSafe); the next scan of the same mount uses
	// raw syscalls throughout.
	raw bool
}

// drawAge returns an age between half of max and max, or 0 for 0.
func drawAge(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return max/2 + rand.N(max/2+1)
}

func (h *Hasher) state(root string) *rootState {
	h.mu.Lock()
	defer h.mu.Unlock()
	rs := h.roots[root]
	if rs == nil {
		rs = &rootState{cache: make(map[string]*entry), reported: make(map[string]string), visited: make(map[devIno]int32)}
		h.roots[root] = rs
	}
	return rs
}

// Scan snapshots root. A directory whose `..data` entry is a symlink is read
// as a kubelet volume, and so is a directory key of one (a root that is a
// `KEY -> ..data/KEY` link); any other directory as a plain tree, a regular
// file as a single-file root.
//
// A non-nil error means the root as a whole could not be read (missing,
// unreadable, a dead mount, too many files, ctx done): keep the last good
// snapshot. ErrorKind tells which. Per-file problems are in Snapshot.Errors.
func (h *Hasher) Scan(ctx context.Context, root string) (*Snapshot, error) {
	root = filepath.Clean(root)
	rs := h.state(root)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.buf == nil {
		rs.buf = make([]byte, readBufferSize)
		rs.digest = xxhash.New()
		rs.croot, rs.cparent = makeCstr(root), makeCstr(filepath.Dir(root))
		rs.cdataLink = makeCstr(filepath.Join(root, "..data"))
		rs.linkBuf = make([]byte, 512)
	}
	snap, err := h.scan(ctx, root, rs)
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return nil, ctx.Err() // not a scan failure: the caller stopped it
	case err != nil:
		// The one place a scan error is wrapped: it names the root, and
		// nothing below repeats it.
		return nil, &RootError{Root: root, Err: err}
	}
	return snap, nil
}

func (h *Hasher) scan(ctx context.Context, root string, rs *rootState) (*Snapshot, error) {
	// One statx gives the type and the mount: no stat, and the parent's
	// mount is looked at only when the root's mount moved.
	var stx unix.Statx_t
	if err := statxC(rs.raw, unix.AT_FDCWD, rs.croot, unix.AT_STATX_DONT_SYNC, unix.STATX_TYPE|unix.STATX_MNT_ID|unix.STATX_INO, &stx); err != nil {
		return nil, &os.PathError{Op: "stat", Path: root, Err: err}
	}
	mnt := mountIDOf(&stx)
	if err := rs.mount.check(mnt, rs.croot, rs.cparent); err != nil {
		return nil, err
	}
	s := &scan{h: h, rs: rs, ctx: ctx, root: root, start: h.now().UnixNano(), files: rs.spare[:0],
		names: rs.names[:0], key: rs.key[:0], errors: rs.errors[:0], skipped: rs.skipped[:0],
		aliases: rs.spareAliases[:0], nodes: rs.nodes[:0], links: rs.links[:0], path: rs.path[:0],
		mnt: mnt, raw: rs.raw && rs.fsMount == mnt}
	defer func() { rs.work = s.work }()
	rs.raw = false // set again by a scan that finds it safe
	if s.quickKubelet() {
		rs.raw = s.raw
		return rs.last, nil
	}
	var shell Snapshot
	var err error
	switch uint32(stx.Mode) & unix.S_IFMT {
	case unix.S_IFREG:
		shell, err = s.scanFile()
	case unix.S_IFDIR:
		shell, err = s.scanDir()
	default:
		return nil, fmt.Errorf("is a %s, not a directory or regular file", filetype.Name(fsType(uint32(stx.Mode))))
	}
	if err != nil {
		return nil, err
	}
	return s.finish(shell), nil
}

// scan is the state of one Scan call.
type scan struct {
	h     *Hasher
	rs    *rootState
	ctx   context.Context
	root  string
	start int64 // ns

	// Per attempt (a kubelet volume may need several).
	// rootPath is the directory symlinks must stay inside; osRoot, opened
	// from it on the first symlink, enforces that.
	rootPath string
	osRoot   *os.Root
	openStat bool // NFS: get signatures through openat+fstat
	files    []*entry
	errors   []ScanError
	skipped  []Skip
	// mnt is the root's mount ID; raw says the steady-tick syscalls may
	// skip the scheduler (see sys_linux.go).
	mnt uint64
	raw bool
	// reuse: the kubelet version is the one last walked; the last snapshot
	// stands (see kubeletRewalk).
	reuse     bool
	bytesRead int64
	// nfiles and nother count regular files and other entries against
	// MaxFiles; total sums the sizes of the files kept, against
	// MaxTotalSize.
	nfiles, nother int
	total          int64
	names          []dirent
	key            []byte // cache key being looked up, reused per file

	// The walk (walk.go): path is the relative path of the entry being
	// looked at, built in one buffer so that no directory needs a path
	// string of its own; depth is the directory level being listed (the
	// root is 0); dev is the device of that directory, to see a mount
	// boundary. nodes, links and aliases are this attempt's directories,
	// links to directories still to follow, and links to directories
	// already walked.
	path    []byte
	depth   int
	dev     uint64
	nodes   []dirNode
	links   []dirLink
	aliases []Alias
	// work counts the steps of the scan: entries looked at, directories
	// listed, cached entries carried over, path components resolved. Tests
	// bound it by the tree's size.
	work int64
}

type devIno struct{ dev, ino uint64 }

// reset prepares a new attempt.
func (s *scan) reset() {
	s.closeRoot()
	s.rs.gen++
	s.files = s.files[:0]
	s.errors = s.errors[:0]
	s.skipped = s.skipped[:0]
	s.bytesRead = 0
	s.nfiles, s.nother, s.total = 0, 0, 0
	s.nodes, s.links, s.aliases, s.path = s.nodes[:0], s.links[:0], s.aliases[:0], s.path[:0]
	s.depth = 0
	clear(s.rs.visited)
}

// contain returns the os.Root that symlinks are resolved in, opening it on
// first use.
func (s *scan) contain() (*os.Root, error) {
	if s.osRoot == nil {
		r, err := os.OpenRoot(s.rootPath)
		if err != nil {
			return nil, err
		}
		s.osRoot = r
	}
	return s.osRoot, nil
}

func (s *scan) closeRoot() {
	if s.osRoot != nil {
		s.osRoot.Close()
		s.osRoot = nil
	}
}

func (s *scan) scanDir() (Snapshot, error) {
	open, copen, sub := s.root, s.rs.croot, ""
	if volume, key := s.kubeletSubdir(); volume != "" {
		open, copen, sub = volume, makeCstr(volume), key
		s.raw = false // not worth a cstr cache: rare, and not allocation-free
	}
	// A raw descriptor: an *os.File would cost four fcntl calls and a failed
	// epoll registration per directory per tick. The os.Root that contains
	// symlinks is opened only when a symlink is met.
	fd, err := openatC(s.raw, unix.AT_FDCWD, copen, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if err != nil {
		return Snapshot{}, &os.PathError{Op: "open", Path: open, Err: err}
	}
	defer closeRaw(s.raw, fd)
	defer s.closeRoot()

	if s.rs.fsMount != s.mnt || s.rs.fsType == 0 {
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(fd, &sfs); err != nil {
			return Snapshot{}, fmt.Errorf("statfs: %w", err)
		}
		s.rs.fsType, s.rs.fsMount = int64(sfs.Type), s.mnt
	}
	if name, ok := PseudoFilesystem(s.rs.fsType); ok {
		return Snapshot{}, &PseudoFilesystemError{Name: name}
	}
	s.openStat = s.h.forceOpenStat || s.rs.fsType == unix.NFS_SUPER_MAGIC

	// Reading `..data` is also the check that it is a symlink (EINVAL
	// otherwise): one syscall on every tick of a kubelet volume.
	target, err := s.readDataLink(fd)
	if err == nil {
		snap, err := s.scanKubelet(open, fd, sub, target)
		s.rs.raw = err == nil && sub == "" && rawSafe(s.rs.fsType)
		return snap, err
	}
	if err != unix.EINVAL && err != unix.ENOENT {
		// A symlink, but not to a directory beside it, or one that cannot
		// be read (EIO on a failing mount): never walk the volume as a
		// plain tree instead.
		return Snapshot{}, fmt.Errorf("readlink ..data: %w", err)
	}
	var st unix.Stat_t
	if sub != "" {
		return Snapshot{}, fmt.Errorf("links to ..data/%s but %s has no ..data link", sub, open)
	}

	s.reset()
	s.rootPath = open
	if err := fstatRaw(s.raw, fd, &st); err != nil {
		return Snapshot{}, fmt.Errorf("stat: %w", err)
	}
	if err := s.walkTop(fd, &st); err != nil {
		return Snapshot{}, err
	}
	return Snapshot{Root: s.root, Kind: KindPlain}, nil
}

// scanFile hashes a root that is a single regular file, framed with its base
// name. It always opens the file: one open per tick is cheap, and on NFS the
// open revalidates the cached attributes.
func (s *scan) scanFile() (Snapshot, error) {
	s.reset()
	name := filepath.Base(s.root)
	fd, err := openatC(false, unix.AT_FDCWD, s.rs.croot, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return Snapshot{}, &os.PathError{Op: "open", Path: s.root, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Snapshot{}, &os.PathError{Op: "fstat", Path: s.root, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return Snapshot{}, errors.New("no longer a regular file")
	}
	if s.rs.fsMount != s.mnt || s.rs.fsType == 0 {
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(fd, &sfs); err != nil {
			return Snapshot{}, fmt.Errorf("statfs: %w", err)
		}
		s.rs.fsType, s.rs.fsMount = int64(sfs.Type), s.mnt
	}
	if name, ok := PseudoFilesystem(s.rs.fsType); ok {
		return Snapshot{}, &PseudoFilesystemError{Name: name}
	}
	s.dev = st.Dev
	s.nfiles++
	if err := s.hashOpen(fd, name, &st); err != nil {
		return Snapshot{}, &os.PathError{Op: "read", Path: s.root, Err: err}
	}
	return Snapshot{Root: s.root, Kind: KindFile}, nil
}

// finish returns the snapshot of the last attempt, shell holding its kind
// and version, drops cache entries for files that are gone, and logs what is
// new since the previous scan. When nothing changed since the previous
// snapshot, it returns that one again: snapshots are read-only.
func (s *scan) finish(shell Snapshot) *Snapshot {
	if s.reuse {
		return s.rs.last
	}
	slices.SortFunc(s.files, func(a, b *entry) int { return strings.Compare(a.path, b.path) })
	d := s.rs.digest
	d.Reset()
	var frame [binary.MaxVarintLen64 + 16]byte
	var size int64
	for _, e := range s.files {
		size += e.file.Size
		n := binary.PutUvarint(frame[:], uint64(len(e.path)))
		d.Write(frame[:n])
		d.WriteString(e.path)
		binary.LittleEndian.PutUint64(frame[:8], uint64(e.file.Size))
		binary.LittleEndian.PutUint64(frame[8:16], e.file.Digest)
		d.Write(frame[:16])
	}
	s.aliases = sortAliases(s.aliases)
	if len(s.aliases) > 0 {
		// A zero length cannot start a file's frame (no path is empty), so
		// the aliases cannot be read as files; a tree without any keeps
		// the digest it always had.
		d.Write([]byte{0})
		for _, a := range s.aliases {
			n := binary.PutUvarint(frame[:], uint64(len(a.Path)))
			d.Write(frame[:n])
			d.WriteString(a.Path)
			n = binary.PutUvarint(frame[:], uint64(len(a.Target)))
			d.Write(frame[:n])
			d.WriteString(a.Target)
		}
	}
	digest := d.Sum64()
	snap := s.rs.last
	if !s.same(snap, &shell, digest, size) {
		snap = new(Snapshot)
		*snap = shell
		snap.Digest, snap.Bytes, snap.BytesRead = digest, size, s.bytesRead
		snap.Files = make(map[string]File, len(s.files))
		for _, e := range s.files {
			snap.Files[e.path] = e.file
		}
		if len(s.aliases) > 0 {
			snap.Aliases = make(map[string]string, len(s.aliases))
			for _, a := range s.aliases {
				snap.Aliases[a.Path] = a.Target
			}
		}
		snap.Errors = slices.Clone(s.errors)
		snap.Skipped = slices.Clone(s.skipped)
		s.rs.last = snap
	}
	// This scan's sorted lists are what the next one carries over from.
	clear(s.rs.prev)
	s.rs.prev, s.rs.spare = s.files, s.rs.prev[:0]
	s.rs.prevAliases, s.rs.spareAliases = s.aliases, s.rs.prevAliases[:0]
	s.rs.names, s.rs.key = s.names[:0], s.key[:0]
	s.rs.nodes, s.rs.links, s.rs.path = s.nodes[:0], s.links[:0], s.path[:0]
	s.rs.errors, s.rs.skipped = s.errors[:0], s.skipped[:0]
	s.rs.interned.endScan()

	s.work += int64(len(s.rs.cache))
	for p, e := range s.rs.cache {
		if e.gen != s.rs.gen {
			delete(s.rs.cache, p)
		}
	}
	s.report()
	return snap
}

// same reports whether prev can be returned for this scan: the same content
// and version, read without errors, skips or content reads, now as then.
func (s *scan) same(prev, shell *Snapshot, digest uint64, size int64) bool {
	return prev != nil && prev.Digest == digest && prev.Bytes == size &&
		prev.Kind == shell.Kind && prev.DataDir == shell.DataDir &&
		len(prev.LinksPending) == 0 && len(shell.LinksPending) == 0 &&
		prev.BytesRead == 0 && s.bytesRead == 0 &&
		len(prev.Errors) == 0 && len(s.errors) == 0 && len(prev.Skipped) == 0 && len(s.skipped) == 0
}

// report logs skips and errors that were not there on the previous scan.
func (s *scan) report() {
	if len(s.skipped) == 0 && len(s.errors) == 0 && len(s.rs.reported) == 0 {
		return
	}
	seen := make(map[string]string, len(s.skipped)+len(s.errors))
	for _, sk := range s.skipped {
		seen[sk.Path] = sk.Reason
		if s.rs.reported[sk.Path] == sk.Reason {
			continue
		}
		level := slog.LevelWarn
		if sk.Reason == "excluded" {
			level = slog.LevelDebug
		}
		if sk.Reason == "pseudo_filesystem" {
			s.h.log.Log(s.ctx, level, "skipping entry: a kernel pseudo-filesystem is mounted there, whose files are not configuration",
				"path", filepath.Join(s.root, sk.Path), "reason", sk.Reason, "fs", sk.Detail)
			continue
		}
		s.h.log.Log(s.ctx, level, "skipping entry", "path", filepath.Join(s.root, sk.Path), "reason", sk.Reason)
	}
	for _, se := range s.errors {
		seen[se.Path] = se.Kind
		if s.rs.reported[se.Path] == se.Kind {
			continue
		}
		s.h.log.Warn("cannot read file, keeping its last state", "path", filepath.Join(s.root, se.Path), "kind", se.Kind, "err", se.Err)
	}
	s.rs.reported = seen
}

// keep adds e to this attempt's files.
func (s *scan) keep(e *entry) {
	if e.gen == s.rs.gen {
		return
	}
	e.gen = s.rs.gen
	s.files = append(s.files, e)
}

// fail records a read error for rel and carries its last good entry into
// this attempt, because an unreadable file is not a deleted one. When rel may
// be a directory (or a link to one), every entry below it is carried too.
func (s *scan) fail(rel string, mayBeDir bool, err error) {
	s.errors = append(s.errors, ScanError{Path: rel, Kind: ErrorKind(err), Err: err})
	s.carry(rel, mayBeDir)
}

// carry keeps the last finished scan's entries for rel and, when it may be
// a directory, for everything below it. The previous lists are sorted, so
// the entries below rel are one run found by binary search: a failure costs
// what it carries, not the size of the tree.
func (s *scan) carry(rel string, mayBeDir bool) {
	if e := s.rs.cache[rel]; e != nil {
		s.keep(e)
	}
	prev, aliases := s.rs.prev, s.rs.prevAliases
	if rel == "" && mayBeDir {
		s.work += int64(len(prev) + len(aliases))
		for _, e := range prev {
			s.keep(e)
		}
		s.aliases = append(s.aliases, aliases...)
		return
	}
	if !mayBeDir {
		return
	}
	prefix := rel + "/"
	i, _ := slices.BinarySearchFunc(prev, prefix, func(e *entry, p string) int { return strings.Compare(e.path, p) })
	for ; i < len(prev) && strings.HasPrefix(prev[i].path, prefix); i++ {
		s.work++
		s.keep(prev[i])
	}
	j, _ := slices.BinarySearchFunc(aliases, rel, func(a Alias, p string) int { return strings.Compare(a.Path, p) })
	if j < len(aliases) && aliases[j].Path == rel {
		s.aliases = append(s.aliases, aliases[j])
	}
	j, _ = slices.BinarySearchFunc(aliases, prefix, func(a Alias, p string) int { return strings.Compare(a.Path, p) })
	for ; j < len(aliases) && strings.HasPrefix(aliases[j].Path, prefix); j++ {
		s.work++
		s.aliases = append(s.aliases, aliases[j])
	}
}

func (s *scan) skip(rel, reason string) {
	s.skipped = append(s.skipped, Skip{Path: rel, Reason: reason})
}

// sortAliases sorts aliases by path and drops repeats of a path (an alias
// carried over and found again).
func sortAliases(as []Alias) []Alias {
	if len(as) < 2 {
		return as
	}
	slices.SortStableFunc(as, func(a, b Alias) int { return strings.Compare(a.Path, b.Path) })
	return slices.CompactFunc(as, func(a, b Alias) bool { return a.Path == b.Path })
}

// fsType returns the fs.FileMode type bits of a stat mode.
func fsType(mode uint32) fs.FileMode {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFLNK:
		return fs.ModeSymlink
	}
	return fs.ModeIrregular
}

// rawSafe reports whether syscalls on a filesystem of this type return
// promptly: memory filesystems and local disks. Network and FUSE
// filesystems can hang for as long as their server does.
func rawSafe(fsType int64) bool {
	switch fsType {
	case unix.TMPFS_MAGIC, unix.RAMFS_MAGIC, unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC,
		unix.BTRFS_SUPER_MAGIC, unix.OVERLAYFS_SUPER_MAGIC:
		return true
	}
	return false
}
