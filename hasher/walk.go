package hasher

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// dirent is one name read from a directory, with the type getdents reported
// (DT_UNKNOWN when the filesystem does not say).
type dirent struct {
	name  string
	cname cstr // name with a NUL, for syscalls; name is a view of it
	typ   uint8
}

// openFileFlags never block (a FIFO swapped in after the stat), never follow
// a symlink swapped in after the stat, and never acquire a controlling tty.
const openFileFlags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOFOLLOW | unix.O_NOCTTY | unix.O_CLOEXEC

const openDirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC

// dirNode is one directory walked in this attempt: enough to rebuild its
// path when a later link leads to it again, without a path string per
// directory (on a deep chain those would add up to the square of its depth).
type dirNode struct {
	parent int32  // -1 for where a walk starts (the root, a followed link)
	name   string // the name in its parent; the whole path for a start
}

// dirLink is a symlink to a directory, followed once the physical tree has
// been walked.
type dirLink struct {
	rel      string
	depth    int    // of the link, as a directory level
	dev      uint64 // of the directory holding it
	raw      bool
	openStat bool
}

// walkTop walks the directory open as fd, whose stat is st, as the top of
// this attempt: its physical tree first, in sorted order, then the symlinks
// to directories found on the way, in the order found (those may add more).
// Every directory is walked once (by device and inode): a link or bind
// mount to one already walked is recorded as an Alias. So the work follows
// the number of entries, whatever the links do; physical paths come first,
// so a link to a directory of the tree names that directory's own path.
func (s *scan) walkTop(fd int, st *unix.Stat_t) error {
	s.rs.visited[devIno{st.Dev, st.Ino}] = 0
	s.nodes = append(s.nodes[:0], dirNode{parent: -1})
	s.path, s.depth, s.dev = s.path[:0], 0, st.Dev
	if err := s.walkDir(fd, 0); err != nil {
		return err
	}
	for i := 0; i < len(s.links); i++ {
		if err := s.followDirLink(s.links[i]); err != nil {
			return err
		}
	}
	return nil
}

// walkDir hashes the directory open as fd, node in s.nodes, whose path
// relative to the containment root is s.path ("" for the root). Every name
// is examined relative to fd, never by a full path, so a rename above us
// cannot redirect the walk and the kernel does not resolve the same prefix
// again per file. It returns only errors that end the scan.
func (s *scan) walkDir(fd int, node int32) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	s.work++
	start := len(s.names)
	if err := s.list(fd); err != nil {
		s.names = s.names[:start]
		s.fail(string(s.path), true, err)
		return nil
	}
	defer func() { s.names = s.names[:start] }()
	slices.SortFunc(s.names[start:], func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	if s.h.afterList != nil {
		s.h.afterList(string(s.path))
	}
	end := len(s.names)
	for i := start; i < end; i++ {
		if err := s.visit(fd, s.names[i], node); err != nil {
			return err
		}
	}
	return nil
}

// visit handles one directory entry, with s.path extended by its name for
// the time of the call.
func (s *scan) visit(fd int, de dirent, node int32) error {
	s.work++
	n := len(s.path)
	if n > 0 {
		s.path = append(s.path, '/')
	}
	s.path = append(s.path, de.name...)
	err := s.visitEntry(fd, de, node)
	s.path = s.path[:n]
	return err
}

func (s *scan) visitEntry(fd int, de dirent, node int32) error {
	typ := de.typ
	var st unix.Stat_t
	haveStat := false
	// Directories are opened right away (the open is the check), and on NFS
	// a regular file's signature comes from openat+fstat instead.
	if typ != unix.DT_DIR && !(s.openStat && typ == unix.DT_REG) {
		if err := fstatatC(s.raw, fd, de.cname, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			s.fail(string(s.path), typ != unix.DT_REG, err)
			return nil
		}
		typ = modeType(st.Mode)
		haveStat = true
	}
	if typ == unix.DT_REG && haveStat && !s.openStat && len(s.h.opts.Include)+len(s.h.opts.Exclude) == 0 {
		// The steady-state path, taken for almost every file of every
		// tick: one fstatat, a map lookup by the path buffer, no
		// allocation, no open, no read.
		if e := s.rs.cache[string(s.path)]; e != nil && s.trusted(e, signatureOf(&st)) {
			return s.keepCounted(e)
		}
	}
	switch typ {
	case unix.DT_REG:
		var stp *unix.Stat_t
		if haveStat && !s.openStat {
			stp = &st
		}
		return s.regular(fd, de, stp)
	case unix.DT_DIR:
		return s.subdir(fd, de, node)
	case unix.DT_LNK:
		return s.symlink(fd, de.name)
	default:
		if err := s.countOther(); err != nil {
			return err
		}
		s.skip(string(s.path), skipReason(typ))
		return nil
	}
}

// included applies Include and Exclude to a file.
func (s *scan) included(rel string) bool {
	base := rel[strings.LastIndexByte(rel, '/')+1:]
	if len(s.h.opts.Exclude) > 0 && matchAny(s.h.opts.Exclude, rel, base) {
		s.skip(rel, "excluded")
		return false
	}
	if len(s.h.opts.Include) > 0 && !matchAny(s.h.opts.Include, rel, base) {
		s.skip(rel, "excluded")
		return false
	}
	return true
}

// count enforces MaxFiles on regular files.
func (s *scan) count() error {
	s.nfiles++
	if max := s.h.opts.MaxFiles; max > 0 && s.nfiles > max {
		return &TooManyFilesError{Max: max}
	}
	return nil
}

// countOther enforces MaxFiles on the entries that are not regular files:
// each costs a syscall per scan too.
func (s *scan) countOther() error {
	s.nother++
	if max := s.h.opts.MaxFiles; max > 0 && s.nother > max {
		return &TooManyFilesError{Max: max, Other: true}
	}
	return nil
}

// addBytes enforces MaxTotalSize before a file of size bytes is kept or
// read.
func (s *scan) addBytes(size int64) error {
	s.total += size
	if max := s.h.opts.MaxTotalSize; max > 0 && s.total > max {
		return &TotalTooLargeError{Max: max}
	}
	return nil
}

// keepCounted keeps the cached entry e of an unchanged file.
func (s *scan) keepCounted(e *entry) error {
	if err := s.count(); err != nil {
		return err
	}
	if err := s.addBytes(e.file.Size); err != nil {
		return err
	}
	s.keep(e)
	return nil
}

// regular hashes the regular file de in fd. st is its fstatat result, or
// nil when the signature must come from an open (NFS).
func (s *scan) regular(fd int, de dirent, st *unix.Stat_t) error {
	rel := string(s.path)
	if !s.included(rel) {
		return s.countOther()
	}
	if st != nil {
		// The steady-state path: no open, no read.
		if e := s.rs.cache[rel]; e != nil && s.trusted(e, signatureOf(st)) {
			return s.keepCounted(e)
		}
	}
	if err := s.count(); err != nil {
		return err
	}
	if st != nil {
		if max := s.h.opts.MaxFileSize; max > 0 && st.Size > max {
			s.fail(rel, false, &FileTooLargeError{Max: max, Size: st.Size})
			return nil
		}
	}
	ffd, err := openatC(false, fd, de.cname, openFileFlags)
	if err != nil {
		s.fail(rel, false, err)
		return nil
	}
	defer unix.Close(ffd)
	return s.hashFD(ffd, rel)
}

// hashFD checks that the open ffd is still a regular file on a real
// filesystem and hashes it. Only errors that end the scan are returned.
func (s *scan) hashFD(ffd int, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstat(ffd, &st); err != nil {
		s.fail(rel, false, err)
		return nil
	}
	if t := modeType(st.Mode); t != unix.DT_REG {
		s.skip(rel, skipReason(t))
		return nil
	}
	if st.Dev != s.dev {
		// A file mounted over an entry (or a link into another mount): it
		// may be a kernel file that never ends.
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(ffd, &sfs); err != nil {
			s.fail(rel, false, err)
			return nil
		}
		if name, ok := PseudoFilesystem(int64(sfs.Type)); ok {
			s.skipped = append(s.skipped, Skip{Path: rel, Reason: "pseudo_filesystem", Detail: name})
			return nil
		}
	}
	if err := s.hashOpen(ffd, rel, &st); err != nil {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		if errors.Is(err, ErrTotalTooLarge) {
			return err
		}
		s.fail(rel, false, err)
	}
	return nil
}

// subdir walks the directory de in fd.
func (s *scan) subdir(fd int, de dirent, node int32) error {
	if err := s.countOther(); err != nil {
		return err
	}
	if len(s.h.opts.Exclude) > 0 && matchAny(s.h.opts.Exclude, string(s.path), de.name) {
		s.skip(string(s.path), "excluded")
		return nil
	}
	if max := s.h.opts.MaxDepth; max > 0 && s.depth+1 > max {
		s.fail(string(s.path), true, &TooDeepError{Max: max})
		return nil
	}
	dfd, err := openatC(false, fd, de.cname, openDirFlags)
	if err != nil {
		s.fail(string(s.path), true, err)
		return nil
	}
	defer unix.Close(dfd)
	return s.descend(dfd, node, de.name, s.depth+1)
}

// descend walks the open directory dfd, named name in node (or, with node
// -1, at path name), at level depth, unless it was walked already in this
// attempt: then it is an Alias of the path it was walked at.
func (s *scan) descend(dfd int, node int32, name string, depth int) error {
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		s.fail(string(s.path), true, err)
		return nil
	}
	id := devIno{st.Dev, st.Ino}
	if seen, ok := s.rs.visited[id]; ok {
		s.aliases = append(s.aliases, Alias{Path: string(s.path), Target: s.nodePath(seen)})
		return nil
	}
	dev, raw, openStat, saveDepth := s.dev, s.raw, s.openStat, s.depth
	defer func() { s.dev, s.raw, s.openStat, s.depth = dev, raw, openStat, saveDepth }()
	if st.Dev != s.dev {
		// A mount boundary (or a link into another mount): refuse a kernel
		// pseudo-filesystem as CONFIG_DIR itself is refused, and read
		// whatever else is mounted as its own type asks.
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(dfd, &sfs); err != nil {
			s.fail(string(s.path), true, err)
			return nil
		}
		if fsName, ok := PseudoFilesystem(int64(sfs.Type)); ok {
			s.skipped = append(s.skipped, Skip{Path: string(s.path), Reason: "pseudo_filesystem", Detail: fsName})
			return nil
		}
		s.dev = st.Dev
		s.openStat = s.h.forceOpenStat || sfs.Type == unix.NFS_SUPER_MAGIC
		s.raw = s.raw && rawSafe(int64(sfs.Type))
	}
	idx := int32(len(s.nodes))
	s.nodes = append(s.nodes, dirNode{parent: node, name: name})
	s.rs.visited[id] = idx
	s.depth = depth
	return s.walkDir(dfd, idx)
}

// nodePath returns the path a directory was walked at, "." for the root.
func (s *scan) nodePath(i int32) string {
	var parts []string
	for ; i >= 0; i = s.nodes[i].parent {
		if s.nodes[i].name != "" {
			parts = append(parts, s.nodes[i].name)
		}
	}
	if len(parts) == 0 {
		return "."
	}
	slices.Reverse(parts)
	return strings.Join(parts, "/")
}

// symlink follows the link at s.path, named name in fd, if it resolves
// inside the containment root. Resolution goes through os.Root, which opens
// one component at a time with openat and refuses absolute targets and any
// `..` that climbs out, so a link can never make the scan read outside the
// root. A link to a regular file is hashed at the link's path; a link to a
// directory is followed after the physical walk (see walkTop).
func (s *scan) symlink(fd int, name string) error {
	if err := s.countOther(); err != nil {
		return err
	}
	rel := string(s.path)
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(fd, name, buf)
		if err != nil {
			s.fail(rel, true, err)
			return nil
		}
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	if filepath.IsAbs(string(buf)) {
		s.skip(rel, "escapes_root")
		return nil
	}
	root, err := s.contain()
	if err != nil {
		s.fail(rel, true, err)
		return nil
	}
	// os.Root walks rel and then the target one component at a time.
	s.work += int64(components(rel) + components(string(buf)))
	fi, err := root.Stat(rel)
	if err != nil {
		s.linkFailed(root, rel, err)
		return nil
	}
	switch {
	case fi.Mode().IsRegular():
		if !s.included(rel) {
			return nil
		}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok && !s.openStat {
			st := unix.Stat_t{Dev: sys.Dev, Ino: sys.Ino, Size: sys.Size,
				Mtim: unix.Timespec(sys.Mtim), Ctim: unix.Timespec(sys.Ctim)}
			if e := s.rs.cache[rel]; e != nil && s.trusted(e, signatureOf(&st)) {
				return s.keepCounted(e)
			}
		}
		if err := s.count(); err != nil {
			return err
		}
		s.work += int64(components(rel))
		f, err := root.OpenFile(rel, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		if err != nil {
			s.fail(rel, false, err)
			return nil
		}
		defer f.Close()
		return s.hashFD(int(f.Fd()), rel)
	case fi.IsDir():
		if len(s.h.opts.Exclude) > 0 && matchAny(s.h.opts.Exclude, rel, name) {
			s.skip(rel, "excluded")
			return nil
		}
		if max := s.h.opts.MaxDepth; max > 0 && s.depth+1 > max {
			s.fail(rel, true, &TooDeepError{Max: max})
			return nil
		}
		s.links = append(s.links, dirLink{rel: rel, depth: s.depth + 1, dev: s.dev, raw: s.raw, openStat: s.openStat})
		return nil
	default:
		s.skip(rel, skipReason(modeTypeFS(fi.Mode())))
		return nil
	}
}

// followDirLink walks the directory the link l leads to, unless it was
// walked already.
func (s *scan) followDirLink(l dirLink) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	root, err := s.contain()
	if err != nil {
		s.fail(l.rel, true, err)
		return nil
	}
	s.work += int64(components(l.rel))
	d, err := root.Open(l.rel)
	if err != nil {
		s.linkFailed(root, l.rel, err)
		return nil
	}
	defer d.Close()
	s.path = append(s.path[:0], l.rel...)
	s.dev, s.raw, s.openStat, s.depth = l.dev, l.raw, l.openStat, l.depth-1
	return s.descend(int(d.Fd()), -1, l.rel, l.depth)
}

// linkFailed reports a link os.Root could not resolve. A link that is
// skipped (a loop, an escape, a dangling link) drops out of the snapshot; a
// failure carries its last state, as a file that cannot be read does.
func (s *scan) linkFailed(root *os.Root, rel string, err error) {
	var errno syscall.Errno
	switch {
	case errors.Is(err, syscall.ELOOP):
		// os.Root answers ELOOP both for a loop and for a link in the
		// chain it could not read (its readlink error is dropped): a
		// failing FUSE READLINK or a link replaced under it would drop
		// the link from the snapshot and so change the digest. Only a
		// chain that really goes round is a loop.
		if cerr := confirmLoop(root, rel); cerr != nil {
			s.fail(rel, true, cerr)
			return
		}
		s.skip(rel, "loop")
	case !errors.As(err, &errno):
		// os.Root reports an escape as a plain error, not an errno.
		s.skip(rel, "escapes_root")
	case errno == syscall.ENOENT:
		s.skip(rel, "dangling")
	default:
		s.fail(rel, true, err)
	}
}

// errLinkMoved: a link that os.Root found in a loop resolves when followed
// again; it changed during the scan.
var errLinkMoved = errors.New("symlink changed while it was being resolved")

// confirmLoop follows the link rel one link at a time, as os.Root does, and
// returns nil if the chain goes on past os.Root's limit (a loop), or the
// error that stopped it: a link that cannot be read (os.Root reports that as
// ELOOP too), or errLinkMoved when the chain now ends.
func confirmLoop(root *os.Root, rel string) error {
	// os.Root follows at most 8 links; a few more leave no doubt.
	for range 16 {
		fi, err := root.Lstat(rel)
		switch {
		case errors.Is(err, syscall.ELOOP):
			// A loop in the directories leading to it.
			return nil
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink == 0:
			return errLinkMoved
		}
		target, err := root.Readlink(rel)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			return errLinkMoved
		}
		rel = filepath.Join(filepath.Dir(rel), target)
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return errLinkMoved
		}
	}
	return nil
}

// components counts the elements of a slash-separated path.
func components(p string) int {
	return strings.Count(p, "/") + 1
}

// list appends the names in the directory fd to s.names, reading raw
// getdents records so the entry types come for free.
func (s *scan) list(fd int) error {
	if s.rs.dentBuf == nil {
		s.rs.dentBuf = make([]byte, 32<<10)
	}
	buf := s.rs.dentBuf
	for {
		n, err := getdentsRaw(s.raw, fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		for off := 0; off < n; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			typ := buf[off+18]
			name := buf[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			off += reclen
			if string(name) == "." || string(name) == ".." {
				continue
			}
			c := s.rs.interned.intern(name)
			s.names = append(s.names, dirent{name: c.String(), cname: c, typ: typ})
		}
	}
}

func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func modeType(mode uint32) uint8 {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return unix.DT_REG
	case unix.S_IFDIR:
		return unix.DT_DIR
	case unix.S_IFLNK:
		return unix.DT_LNK
	case unix.S_IFIFO:
		return unix.DT_FIFO
	case unix.S_IFSOCK:
		return unix.DT_SOCK
	case unix.S_IFCHR:
		return unix.DT_CHR
	case unix.S_IFBLK:
		return unix.DT_BLK
	}
	return unix.DT_UNKNOWN
}

func skipReason(typ uint8) string {
	switch typ {
	case unix.DT_FIFO:
		return "fifo"
	case unix.DT_SOCK:
		return "socket"
	case unix.DT_CHR, unix.DT_BLK:
		return "device"
	}
	return "other"
}

func modeTypeFS(m interface{ Type() fs.FileMode }) uint8 {
	t := m.Type()
	switch {
	case t&fs.ModeNamedPipe != 0:
		return unix.DT_FIFO
	case t&fs.ModeSocket != 0:
		return unix.DT_SOCK
	case t&fs.ModeDevice != 0:
		return unix.DT_CHR
	}
	return unix.DT_UNKNOWN
}
