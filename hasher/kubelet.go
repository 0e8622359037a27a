package hasher

import (
	"errors"
	"fmt"
	"os"
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
func (s *scan) scanKubelet(volume string, rootFD int, sub string) (*Snapshot, error) {
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
		err = s.walkData(volume, rootFD, target, sub)
		if cerr := s.ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if errors.Is(err, ErrTooManyFiles) {
			return nil, err
		}
		again, againID, rerr := readDataLink(rootFD)
		if rerr != nil {
			return nil, fmt.Errorf("scan %s: %w", s.root, rerr)
		}
		if again == target && againID == dataID {
			if err != nil {
				// Not a swap: the directory itself is unreadable.
				return nil, fmt.Errorf("scan %s: %w", s.root, err)
			}
			snap := &Snapshot{Root: s.root, Kind: KindKubelet, DataDir: target}
			// Kubelet fixes the links once, right after the swap, so a
			// version whose links were all there once needs no more checks.
			if sub == "" && s.rs.linksDone != target {
				snap.LinksPending = s.pendingLinks(rootFD)
				if len(snap.LinksPending) == 0 {
					s.rs.linksDone = target
				}
			}
			return snap, nil
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

// walkData walks the timestamped directory target, or its subdirectory sub.
// Symlinks inside are contained to what is walked, not to the volume.
func (s *scan) walkData(volume string, rootFD int, target, sub string) error {
	fd, err := openat(rootFD, target, openDirFlags)
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
	s.rootPath = filepath.Join(volume, target, sub)
	s.ancestors = append(s.ancestors, devIno{st.Dev, st.Ino})
	return s.walkDir(fd, "")
}

// kubeletSubdir recognizes a root that is a directory key of a kubelet volume
// (CONFIG_DIR=/etc/config/tls, where kubelet made `tls -> ..data/tls`). It
// returns the volume and the key, so the scan can pin `..data` as for a
// whole volume instead of following the link into one version that may be
// deleted under the walk.
func kubeletSubdir(root string) (volume, sub string) {
	target, err := os.Readlink(root)
	if err != nil {
		return "", ""
	}
	sub, ok := strings.CutPrefix(target, "..data/")
	if !ok || sub == "" || !filepath.IsLocal(sub) {
		return "", ""
	}
	return filepath.Dir(root), filepath.Clean(sub)
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
