package hasher

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxKubeletAttempts bounds how often one Scan rereads a kubelet volume whose
// `..data` link moved while it was being walked.
const maxKubeletAttempts = 10

// scanKubelet reads the directory `..data` names, and only that, then checks
// that `..data` still names the same directory; if kubelet swapped it in the
// meantime the attempt is thrown away, so old and new files never mix.
//
// sub, if not empty, is the directory key below `..data` that is the root
// being scanned (see kubeletSubdir).
func (s *scan) scanKubelet(volume string, rootFD int, sub string) (Snapshot, error) {
	var lastErr error
	for attempt := 1; attempt <= maxKubeletAttempts; attempt++ {
		if err := s.ctx.Err(); err != nil {
			return Snapshot{}, err
		}
		target, dataID, err := s.readDataLink(rootFD)
		if err != nil {
			return Snapshot{}, err
		}
		s.reset()
		err = s.walkData(volume, rootFD, target, sub)
		if cerr := s.ctx.Err(); cerr != nil {
			return Snapshot{}, cerr
		}
		if errors.Is(err, ErrTooManyFiles) {
			return Snapshot{}, err
		}
		again, againID, rerr := s.readDataLink(rootFD)
		if rerr != nil {
			return Snapshot{}, rerr
		}
		if again == target && againID == dataID {
			if err != nil {
				// Not a swap: the directory itself is unreadable.
				return Snapshot{}, err
			}
			snap := Snapshot{Root: s.root, Kind: KindKubelet, DataDir: target.String()}
			// Kubelet fixes the links once, right after the swap, so a
			// version whose links were all there once needs no more checks.
			if sub == "" && s.rs.linksDone != snap.DataDir {
				snap.LinksPending = s.pendingLinks(rootFD)
				if len(snap.LinksPending) == 0 {
					s.rs.linksDone = snap.DataDir
				}
			}
			return snap, nil
		}
		lastErr = err
		s.h.log.Debug("kubelet volume changed during scan, rescanning",
			"path", s.root, "dir", target.String(), "now", again.String(), "attempt", attempt)
	}
	if lastErr != nil {
		return Snapshot{}, lastErr
	}
	return Snapshot{}, fmt.Errorf("%w after %d attempts", errUnstable, maxKubeletAttempts)
}

// readDataLink returns the directory `..data` names and its identity. Kubelet
// always points it at a sibling `..<timestamp>` directory; anything else is
// refused rather than followed. While `..data` keeps its target, the same
// cstr is returned without allocating.
func (s *scan) readDataLink(rootFD int) (cstr, devIno, error) {
	buf := s.rs.linkBuf
	n, err := readlinkatC(rootFD, dataLinkC, buf)
	if err != nil {
		return "", devIno{}, fmt.Errorf("readlink ..data: %w", err)
	}
	got := buf[:n]
	target := s.rs.dataTarget
	if string(got) != target.String() {
		if len(got) == 0 || string(got) == "." || string(got) == ".." || bytes.IndexByte(got, '/') >= 0 || n == len(buf) {
			return "", devIno{}, fmt.Errorf("..data points to %q, not a directory beside it", got)
		}
		target = makeCstr(string(got))
		s.rs.dataTarget = target
	}
	var st unix.Stat_t
	if err := fstatatC(rootFD, target, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		// Swapped and deleted between the two calls: the caller retries.
		return target, devIno{}, nil
	}
	return target, devIno{st.Dev, st.Ino}, nil
}

// walkData walks the timestamped directory target, or its subdirectory sub.
// Symlinks inside are contained to what is walked, not to the volume.
func (s *scan) walkData(volume string, rootFD int, target cstr, sub string) error {
	fd, err := openatC(rootFD, target, openDirFlags)
	if err != nil {
		return err
	}
	if sub != "" {
		for _, part := range strings.Split(sub, string(filepath.Separator)) {
			next, err := openat(fd, part, openDirFlags)
			unix.Close(fd)
			if err != nil {
				return err
			}
			fd = next
		}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if s.rs.dataRootFor != target || s.rs.dataSub != sub {
		s.rs.dataRoot, s.rs.dataRootFor, s.rs.dataSub = filepath.Join(volume, target.String(), sub), target, sub
	}
	s.rootPath = s.rs.dataRoot
	s.ancestors = append(s.ancestors, devIno{st.Dev, st.Ino})
	return s.walkDir(fd, "")
}

// kubeletSubdir recognizes a root that is a directory key of a kubelet volume
// (CONFIG_DIR=/etc/config/tls, where kubelet made `tls -> ..data/tls`). It
// returns the volume and the key, so the scan can pin `..data` as for a
// whole volume instead of following the link into one version that may be
// deleted under the walk.
func (s *scan) kubeletSubdir() (volume, sub string) {
	n, err := readlinkatC(unix.AT_FDCWD, s.rs.croot, s.rs.linkBuf)
	if err != nil || n == len(s.rs.linkBuf) {
		return "", "" // not a link (EINVAL), the usual case, or too long
	}
	sub, ok := strings.CutPrefix(string(s.rs.linkBuf[:n]), "..data/")
	if !ok || sub == "" || !filepath.IsLocal(sub) {
		return "", ""
	}
	return filepath.Dir(s.root), filepath.Clean(sub)
}

// pendingLinks returns the top-level keys of this attempt's files that have
// no visible link at the volume's root pointing through `..data`.
func (s *scan) pendingLinks(rootFD int) []string {
	var pending []string
	buf := make([]byte, 512)
	seen := make(map[string]bool)
	for _, e := range s.files {
		top, _, _ := strings.Cut(e.path, "/")
		if seen[top] {
			continue
		}
		seen[top] = true
		n, err := unix.Readlinkat(rootFD, top, buf)
		if err != nil || string(buf[:n]) != "..data/"+top {
			pending = append(pending, top)
		}
	}
	return pending
}
