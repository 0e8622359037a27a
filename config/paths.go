package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/internal/filetype"
)

// checkPath makes sure one CONFIG_DIR entry is a directory or a regular file
// on a real filesystem, and can be read now. It never blocks: a FIFO, a
// device or a socket is refused from its stat, before any open, and the one
// open it makes is non-blocking.
func (c Config) checkPath(p string) error {
	bad := func(want string) error { return c.configErr("CONFIG_DIR", p, want) }
	fi, err := os.Stat(p)
	if err == nil {
		if err := checkPathType(p, fi); err != nil {
			return bad(err.Error())
		}
		var sfs unix.Statfs_t
		if err := unix.Statfs(p, &sfs); err == nil {
			if name, ok := hasher.PseudoFilesystem(int64(sfs.Type)); ok {
				return bad(fmt.Sprintf("is on %s, a kernel pseudo-filesystem whose files are not configuration; want directories or regular files on a real filesystem (a volume, a bind mount, NFS, FUSE)", name))
			}
		}
		var f *os.File
		if f, err = os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0); err == nil {
			// What was opened may have been swapped in after the stat.
			if fi, err = f.Stat(); err == nil {
				if terr := checkPathType(p, fi); terr != nil {
					f.Close()
					return bad(terr.Error())
				}
				if fi.IsDir() {
					if _, err = f.ReadDir(1); errors.Is(err, io.EOF) {
						err = nil
					}
				}
			}
			f.Close()
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is in the message already
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return bad("does not exist; want existing directories or files")
	case errors.Is(err, os.ErrPermission):
		return bad(fmt.Sprintf("is not readable by uid %d; want paths this user can read", os.Getuid()))
	}
	return bad(fmt.Sprintf("cannot be read (%v)", err))
}

// sameDirectories returns the CONFIG_DIR entries that are, right now, the
// same directory or file as an earlier entry under another path (through a
// symlink or a bind mount), as "A = B" pairs. They are not merged: a
// symlink may be repointed (kubelet repoints its own), and then they are
// two watches; a change seen through both still makes one reload.
func (c Config) SameDirectories() []string {
	type id struct{ dev, ino uint64 }
	first := map[id]string{}
	var out []string
	for _, p := range c.ConfigDir {
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil {
			continue
		}
		k := id{uint64(st.Dev), st.Ino}
		if prev, ok := first[k]; ok {
			out = append(out, prev+" = "+p)
			continue
		}
		first[k] = p
	}
	return out
}

// checkPathType refuses anything but a directory or a regular file.
func checkPathType(p string, fi os.FileInfo) error {
	if fi.IsDir() || fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("is %s; want a directory or a regular file", special(p, fi))
}

// special names the type of the special file p ("a FIFO (named pipe)"),
// and what it resolves to when p is a link.
func special(p string, fi os.FileInfo) string {
	what := "a " + filetype.Name(fi.Mode())
	if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
		what += " (it resolves to " + real + ")"
	}
	return what
}

// checkPIDFile refuses a PID_FILE that exists and is not a regular file (a
// FIFO would never yield a PID). One that does not exist yet is fine: the
// app writes it when it starts.
func (c Config) checkPIDFile(p string) error {
	if p == "" {
		return nil
	}
	// A file on a kernel pseudo-filesystem is the kernel's, never the
	// app's: /proc/sys/kernel/ns_last_pid holds a number that looks like a
	// PID. The directory is looked at when the file does not exist yet.
	var sfs unix.Statfs_t
	if err := unix.Statfs(p, &sfs); err != nil {
		_ = unix.Statfs(filepath.Dir(p), &sfs)
	}
	if name, ok := hasher.PseudoFilesystem(int64(sfs.Type)); ok {
		return c.configErr("PID_FILE", p, fmt.Sprintf("is on %s, a kernel pseudo-filesystem, so the app cannot have written it; want the file the app writes its PID to, such as /run/nginx.pid", name))
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil // missing now, or reported on each reload
	}
	if fi.IsDir() {
		return c.configErr("PID_FILE", p, "is a directory; want a regular file holding the app's PID")
	}
	if !fi.Mode().IsRegular() {
		return c.configErr("PID_FILE", p, "is "+special(p, fi)+"; want a regular file holding the app's PID")
	}
	return nil
}
