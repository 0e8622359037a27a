package hasher

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// Options configures a Hasher.
type Options struct {
	// Logger receives warnings about skipped entries and unreadable files,
	// each logged once when it first appears. Nil discards.
	Logger *slog.Logger
	// MaxFiles caps the regular files of one root; 0 means no limit. A root
	// with more makes Scan fail with an error wrapping ErrTooManyFiles.
	MaxFiles int
	// MaxFileSize caps the size of a file that is read; 0 means no limit. A
	// larger file is never read: it is reported as a ScanError of kind
	// "limit" and keeps its last good entry, if any.
	MaxFileSize int64
	// Include, if not empty, keeps only files whose relative path or base
	// name matches one of these path.Match globs. Exclude drops files and
	// whole directories that match. Check them with ValidateGlobs first.
	Include, Exclude []string
}

// defaultRacyMargin is how close to the start of the hashing scan a file's
// mtime or ctime may be before its cached digest is distrusted. Coarse
// timestamps (FAT: 2 s, many NFS servers: 1 s, kernels without fine-grained
// timestamps: one jiffy) let a write land in the same tick as the stat that
// saw the old content; git calls this the racy-git problem.
const defaultRacyMargin = 2 * time.Second

// maxKubeletAttempts bounds how often one Scan rereads a kubelet volume whose
// `..data` link moved while it was being walked.
const maxKubeletAttempts = 10

// readBufferSize is the fixed buffer file content is streamed through.
const readBufferSize = 128 << 10

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
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hasher{
		opts:       opts,
		log:        log,
		now:        time.Now,
		racyMargin: defaultRacyMargin,
		roots:      make(map[string]*rootState),
	}
}

// rootState is everything a Hasher keeps between scans of one root.
type rootState struct {
	mu     sync.Mutex
	cache  map[string]*entry
	gen    uint64
	buf    []byte // content read buffer
	digest *xxhash.Digest
	// dentBuf receives raw getdents records.
	dentBuf []byte
	// reported holds the skips and errors already logged, so a broken link
	// is logged when it appears, not on every tick.
	reported map[string]string
}

// signature is what must stay equal for a cached digest to be reused.
type signature struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns since the epoch
}

func signatureOf(st *unix.Stat_t) signature {
	return signature{
		dev:   st.Dev,
		ino:   st.Ino,
		size:  st.Size,
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
	}
}

// entry is the cached state of one file.
type entry struct {
	path     string
	sig      signature
	file     File
	hashedAt int64  // ns; start of the scan that read the content
	gen      uint64 // last attempt that saw the file
	reusable bool   // false when the file changed while it was being read
}

// trusted reports whether e's digest may stand in for content with the given
// signature: the signature is unchanged and was not racy when hashed.
func (e *entry) trusted(sig signature, margin time.Duration) bool {
	if !e.reusable || e.sig != sig {
		return false
	}
	newest := max(sig.mtime, sig.ctime)
	return newest < e.hashedAt-int64(margin)
}

func (h *Hasher) state(root string) *rootState {
	h.mu.Lock()
	defer h.mu.Unlock()
	rs := h.roots[root]
	if rs == nil {
		rs = &rootState{cache: make(map[string]*entry), reported: make(map[string]string)}
		h.roots[root] = rs
	}
	return rs
}

// Scan snapshots root. A directory whose `..data` entry is a symlink is read
// as a kubelet volume, any other directory as a plain tree, a regular file as
// a single-file root.
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
	}

	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	s := &scan{h: h, rs: rs, ctx: ctx, root: root, start: h.now().UnixNano()}
	var snap *Snapshot
	switch {
	case fi.Mode().IsRegular():
		snap, err = s.scanFile()
	case fi.IsDir():
		snap, err = s.scanDir()
	default:
		return nil, fmt.Errorf("scan %s: not a directory or regular file (%s)", root, fi.Mode().Type())
	}
	if err != nil {
		return nil, err
	}
	s.finish(snap)
	return snap, nil
}

// scan is the state of one Scan call.
type scan struct {
	h     *Hasher
	rs    *rootState
	ctx   context.Context
	root  string
	start int64 // ns

	// Per attempt (a kubelet volume may need several).
	osRoot    *os.Root // containment root for following symlinks
	openStat  bool     // NFS: get signatures through openat+fstat
	files     []*entry
	errors    []ScanError
	skipped   []Skip
	bytesRead int64
	nfiles    int
	ancestors []devIno
	names     []dirent
	dentBuf   []byte
}

type devIno struct{ dev, ino uint64 }

// reset prepares a new attempt.
func (s *scan) reset() {
	s.rs.gen++
	s.files = s.files[:0]
	s.errors = s.errors[:0]
	s.skipped = s.skipped[:0]
	s.bytesRead = 0
	s.nfiles = 0
	s.ancestors = s.ancestors[:0]
}

func (s *scan) scanDir() (*Snapshot, error) {
	rootDir, err := os.OpenRoot(s.root)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	defer rootDir.Close()
	dir, err := rootDir.Open(".")
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	defer dir.Close()
	fd := int(dir.Fd())

	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return nil, fmt.Errorf("scan: statfs %s: %w", s.root, err)
	}
	s.openStat = s.h.forceOpenStat || sfs.Type == unix.NFS_SUPER_MAGIC

	var st unix.Stat_t
	err = unix.Fstatat(fd, "..data", &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return s.scanKubelet(rootDir, fd)
	}

	s.reset()
	s.osRoot = rootDir
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("scan: stat %s: %w", s.root, err)
	}
	s.ancestors = append(s.ancestors, devIno{st.Dev, st.Ino})
	if err := s.walkDir(fd, ""); err != nil {
		return nil, err
	}
	return &Snapshot{Root: s.root, Kind: KindPlain}, nil
}

// scanKubelet reads the directory `..data` names, and only that, then checks
// that `..data` still names the same directory; if kubelet swapped it in the
// meantime the attempt is thrown away, so old and new files never mix.
func (s *scan) scanKubelet(rootDir *os.Root, rootFD int) (*Snapshot, error) {
	var lastErr error
	for attempt := 1; attempt <= maxKubeletAttempts; attempt++ {
		if err := s.ctx.Err(); err != nil {
			return nil, err
		}
		target, dataID, err := readDataLink(rootFD)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", s.root, err)
		}
		s.reset()
		err = s.walkData(rootDir, target)
		if errors.Is(err, ErrTooManyFiles) || s.ctx.Err() != nil {
			return nil, err
		}
		again, againID, rerr := readDataLink(rootFD)
		if rerr != nil {
			return nil, fmt.Errorf("scan %s: %w", s.root, rerr)
		}
		if err == nil && again == target && againID == dataID {
			return &Snapshot{Root: s.root, Kind: KindKubelet, DataDir: target}, nil
		}
		lastErr = err
		s.h.log.Debug("kubelet volume changed during scan, rescanning",
			"path", s.root, "dir", target, "now", again, "attempt", attempt)
	}
	if lastErr != nil {
		return nil, fmt.Errorf("scan %s: %w", s.root, lastErr)
	}
	return nil, fmt.Errorf("scan %s: %w after %d attempts", s.root, errUnstable, maxKubeletAttempts)
}

// readDataLink returns the directory `..data` names and its identity. Kubelet
// always points it at a sibling `..<timestamp>` directory; anything else is
// refused rather than followed.
func readDataLink(rootFD int) (string, devIno, error) {
	buf := make([]byte, 256)
	n, err := unix.Readlinkat(rootFD, "..data", buf)
	if err != nil {
		return "", devIno{}, fmt.Errorf("readlink ..data: %w", err)
	}
	target := string(buf[:n])
	if target == "" || target == "." || target == ".." || strings.ContainsRune(target, '/') {
		return "", devIno{}, fmt.Errorf("..data points to %q, not a directory beside it", target)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(rootFD, target, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		// Swapped and deleted between the two calls: the caller retries.
		return target, devIno{}, nil
	}
	return target, devIno{st.Dev, st.Ino}, nil
}

// walkData walks the timestamped directory target. Symlinks inside it are
// contained to it, not to the volume.
func (s *scan) walkData(rootDir *os.Root, target string) error {
	data, err := rootDir.OpenRoot(target)
	if err != nil {
		return err
	}
	defer data.Close()
	dir, err := data.Open(".")
	if err != nil {
		return err
	}
	defer dir.Close()
	fd := int(dir.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	s.osRoot = data
	s.ancestors = append(s.ancestors, devIno{st.Dev, st.Ino})
	return s.walkDir(fd, "")
}

// scanFile hashes a root that is a single regular file, framed with its base
// name. It always opens the file: one open per tick is cheap, and on NFS the
// open revalidates the cached attributes.
func (s *scan) scanFile() (*Snapshot, error) {
	s.reset()
	name := filepath.Base(s.root)
	fd, err := unix.Open(s.root, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", &os.PathError{Op: "open", Path: s.root, Err: err})
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("scan: %w", &os.PathError{Op: "fstat", Path: s.root, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("scan %s: no longer a regular file", s.root)
	}
	s.nfiles++
	if err := s.hashOpen(fd, name, &st); err != nil {
		return nil, fmt.Errorf("scan: %w", &os.PathError{Op: "read", Path: s.root, Err: err})
	}
	return &Snapshot{Root: s.root, Kind: KindFile}, nil
}

// finish fills snap from the last attempt, drops cache entries for files that
// are gone, and logs what is new since the previous scan.
func (s *scan) finish(snap *Snapshot) {
	slices.SortFunc(s.files, func(a, b *entry) int { return strings.Compare(a.path, b.path) })
	snap.Files = make(map[string]File, len(s.files))
	d := s.rs.digest
	d.Reset()
	var frame [binary.MaxVarintLen64 + 16]byte
	for _, e := range s.files {
		snap.Files[e.path] = e.file
		snap.Bytes += e.file.Size
		n := binary.PutUvarint(frame[:], uint64(len(e.path)))
		d.Write(frame[:n])
		d.WriteString(e.path)
		binary.LittleEndian.PutUint64(frame[:8], uint64(e.file.Size))
		binary.LittleEndian.PutUint64(frame[8:16], e.file.Digest)
		d.Write(frame[:16])
	}
	snap.Digest = d.Sum64()
	snap.BytesRead = s.bytesRead
	snap.Errors = slices.Clone(s.errors)
	snap.Skipped = slices.Clone(s.skipped)

	for p, e := range s.rs.cache {
		if e.gen != s.rs.gen {
			delete(s.rs.cache, p)
		}
	}
	s.report()
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

// hashOpen hashes the open regular file fd whose signature is st, unless the
// cache already holds a trusted digest for it.
func (s *scan) hashOpen(fd int, rel string, st *unix.Stat_t) error {
	sig := signatureOf(st)
	e := s.rs.cache[rel]
	if e != nil && e.trusted(sig, s.h.racyMargin) {
		s.keep(e)
		return nil
	}
	if max := s.h.opts.MaxFileSize; max > 0 && st.Size > max {
		s.fail(rel, false, fmt.Errorf("%d bytes: %w", st.Size, errFileTooLarge))
		return nil
	}
	size, digest, err := s.readAll(fd)
	if err != nil {
		return err
	}
	var after unix.Stat_t
	reusable := unix.Fstat(fd, &after) == nil && signatureOf(&after) == sig
	if e == nil {
		e = &entry{path: rel}
		s.rs.cache[rel] = e
	}
	e.sig = sig
	e.file = File{Size: size, Digest: digest}
	e.hashedAt = s.start
	e.reusable = reusable
	s.keep(e)
	return nil
}

// keep adds e to this attempt's files.
func (s *scan) keep(e *entry) {
	if e.gen == s.rs.gen {
		return
	}
	e.gen = s.rs.gen
	s.files = append(s.files, e)
}

// readAll streams fd through the fixed buffer.
func (s *scan) readAll(fd int) (int64, uint64, error) {
	d := s.rs.digest
	d.Reset()
	var size int64
	for {
		n, err := unix.Read(fd, s.rs.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		if n <= 0 {
			break
		}
		d.Write(s.rs.buf[:n])
		size += int64(n)
		s.bytesRead += int64(n)
		// A multi-gigabyte file should not hold up shutdown.
		if size&(64<<20-1) < int64(n) && s.ctx.Err() != nil {
			return 0, 0, s.ctx.Err()
		}
	}
	return size, d.Sum64(), nil
}

// fail records a read error for rel and carries its last good entry into
// this attempt, because an unreadable file is not a deleted one. When rel may
// be a directory (or a link to one), every entry below it is carried too.
func (s *scan) fail(rel string, mayBeDir bool, err error) {
	s.errors = append(s.errors, ScanError{Path: rel, Kind: ErrorKind(err), Err: err})
	if e := s.rs.cache[rel]; e != nil {
		s.keep(e)
	}
	if !mayBeDir {
		return
	}
	prefix := rel + "/"
	for p, e := range s.rs.cache {
		if rel == "" || strings.HasPrefix(p, prefix) {
			s.keep(e)
		}
	}
}

func (s *scan) skip(rel, reason string) {
	s.skipped = append(s.skipped, Skip{Path: rel, Reason: reason})
}
