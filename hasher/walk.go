package hasher

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
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

// walkDir hashes the directory open as fd, whose path relative to the
// containment root is dirRel ("" for the root). Every name is examined
// relative to fd, never by a full path, so a rename above us cannot redirect
// the walk and the kernel does not resolve the same prefix again per file.
// It returns only errors that end the scan.
func (s *scan) walkDir(fd int, dirRel string) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	start := len(s.names)
	if err := s.list(fd); err != nil {
		s.names = s.names[:start]
		s.fail(dirRel, true, err)
		return nil
	}
	defer func() { s.names = s.names[:start] }()
	slices.SortFunc(s.names[start:], func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	if s.h.afterList != nil {
		s.h.afterList(dirRel)
	}
	end := len(s.names)
	for i := start; i < end; i++ {
		de := s.names[i]
		if err := s.visit(fd, de, dirRel); err != nil {
			return err
		}
	}
	return nil
}

// visit handles one directory entry.
func (s *scan) visit(fd int, de dirent, dirRel string) error {
	typ := de.typ
	var st unix.Stat_t
	haveStat := false
	// Directories are opened right away (the open is the check), and on NFS
	// a regular file's signature comes from openat+fstat instead.
	if typ != unix.DT_DIR && !(s.openStat && typ == unix.DT_REG) {
		if err := fstatatC(s.raw, fd, de.cname, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			s.fail(joinRel(dirRel, de.name), typ != unix.DT_REG, err)
			return nil
		}
		typ = modeType(st.Mode)
		haveStat = true
	}
	if typ == unix.DT_REG && haveStat && !s.openStat && len(s.h.opts.Include)+len(s.h.opts.Exclude) == 0 {
		// The steady-state path, taken for almost every file of every
		// tick: one fstatat, a map lookup by a reused buffer, no
		// allocation, no open, no read.
		s.key = append(s.key[:0], dirRel...)
		if dirRel != "" {
			s.key = append(s.key, '/')
		}
		s.key = append(s.key, de.name...)
		if e := s.rs.cache[string(s.key)]; e != nil && s.trusted(e, signatureOf(&st)) {
			if err := s.count(); err != nil {
				return err
			}
			s.keep(e)
			return nil
		}
	}
	rel := joinRel(dirRel, de.name)
	switch typ {
	case unix.DT_REG:
		var stp *unix.Stat_t
		if haveStat && !s.openStat {
			stp = &st
		}
		return s.regular(fd, de.name, rel, stp)
	case unix.DT_DIR:
		return s.subdir(fd, de.name, rel)
	case unix.DT_LNK:
		return s.symlink(fd, de.name, rel)
	default:
		s.skip(rel, skipReason(typ))
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

// count enforces MaxFiles.
func (s *scan) count() error {
	s.nfiles++
	if max := s.h.opts.MaxFiles; max > 0 && s.nfiles > max {
		return &TooManyFilesError{Max: max}
	}
	return nil
}

// regular hashes the regular file name in fd. st is its fstatat result, or
// nil when the signature must come from an open (NFS).
func (s *scan) regular(fd int, name, rel string, st *unix.Stat_t) error {
	if !s.included(rel) {
		return nil
	}
	if err := s.count(); err != nil {
		return err
	}
	if st != nil {
		// The steady-state path: no open, no read.
		if e := s.rs.cache[rel]; e != nil && s.trusted(e, signatureOf(st)) {
			s.keep(e)
			return nil
		}
		if max := s.h.opts.MaxFileSize; max > 0 && st.Size > max {
			s.fail(rel, false, &FileTooLargeError{Max: max, Size: st.Size})
			return nil
		}
	}
	ffd, err := openat(fd, name, openFileFlags)
	if err != nil {
		s.fail(rel, false, err)
		return nil
	}
	defer unix.Close(ffd)
	return s.hashFD(ffd, rel)
}

// hashFD checks that the open ffd is still a regular file and hashes it.
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
	if err := s.hashOpen(ffd, rel, &st); err != nil {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		s.fail(rel, false, err)
	}
	return nil
}

// subdir walks the directory name in fd.
func (s *scan) subdir(fd int, name, rel string) error {
	if len(s.h.opts.Exclude) > 0 && matchAny(s.h.opts.Exclude, rel, name) {
		s.skip(rel, "excluded")
		return nil
	}
	dfd, err := openat(fd, name, openDirFlags)
	if err != nil {
		s.fail(rel, true, err)
		return nil
	}
	defer unix.Close(dfd)
	return s.descend(dfd, rel)
}

// descend walks the open directory dfd unless it is one of its own ancestors
// (a symlink or bind mount pointing up the tree).
func (s *scan) descend(dfd int, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		s.fail(rel, true, err)
		return nil
	}
	id := devIno{st.Dev, st.Ino}
	if slices.Contains(s.ancestors, id) {
		s.skip(rel, "loop")
		return nil
	}
	s.ancestors = append(s.ancestors, id)
	err := s.walkDir(dfd, rel)
	s.ancestors = s.ancestors[:len(s.ancestors)-1]
	return err
}

// symlink follows the link rel if it resolves inside the containment root.
// Resolution goes through os.Root, which opens one component at a time with
// openat and refuses absolute targets and any `..` that climbs out, so a
// link can never make the scan read outside the root.
func (s *scan) symlink(fd int, name, rel string) error {
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
	fi, err := root.Stat(rel)
	if err != nil {
		var errno syscall.Errno
		switch {
		case errors.Is(err, syscall.ELOOP):
			s.skip(rel, "loop")
		case !errors.As(err, &errno):
			// os.Root reports an escape as a plain error, not an errno.
			s.skip(rel, "escapes_root")
		case errno == syscall.ENOENT:
			s.skip(rel, "dangling")
		default:
			s.fail(rel, true, err)
		}
		return nil
	}
	switch {
	case fi.Mode().IsRegular():
		if !s.included(rel) {
			return nil
		}
		if err := s.count(); err != nil {
			return err
		}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok && !s.openStat {
			st := unix.Stat_t{Dev: sys.Dev, Ino: sys.Ino, Size: sys.Size,
				Mtim: unix.Timespec(sys.Mtim), Ctim: unix.Timespec(sys.Ctim)}
			if e := s.rs.cache[rel]; e != nil && s.trusted(e, signatureOf(&st)) {
				s.keep(e)
				return nil
			}
		}
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
		d, err := root.Open(rel)
		if err != nil {
			s.fail(rel, true, err)
			return nil
		}
		defer d.Close()
		return s.descend(int(d.Fd()), rel)
	default:
		s.skip(rel, skipReason(modeTypeFS(fi.Mode())))
		return nil
	}
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

func joinRel(dirRel, name string) string {
	if dirRel == "" {
		return name
	}
	return dirRel + "/" + name
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
