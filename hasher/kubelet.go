package hasher

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// maxKubeletAttempts bounds how often one Scan rereads a kubelet volume whose
// `..data` link moved while it was being walked.
const maxKubeletAttempts = 10

// kubeletRewalk is how long an unchanged kubelet version is trusted without
// walking its files. Kubelet never writes into a version once `..data` names
// it: an update is a new directory and a swap of the link. So while `..data`
// names the same directory (same name, inode and timestamps), its files are
// the ones walked before, and a tick costs a handful of syscalls instead of
// one per file. The files are walked again at this age anyway (or at
// Options.VerifyAfter, if sooner), so that someone editing a version in
// place, which kubelet never does, is still noticed.
//
// Each Hasher draws its own age between half of this and this (see New):
// with one fixed age, a fleet of replicas started together (a rollout)
// walked their volumes in the same interval every 30 s, a wave bench/fleet
// measured at 8 times the mean load of 200 replicas; drawn ages spread the
// first walks over 15 s and keep them apart after.
const kubeletRewalk = 30 * time.Second

// scanKubelet reads the directory `..data` names, and only that, then checks
// that `..data` still names the same directory; if kubelet swapped it in the
// meantime the attempt is thrown away, so old and new files never mix.
//
// sub, if not empty, is the directory key below `..data` that is the root
// being scanned (see kubeletSubdir); target is what `..data` named when the
// caller read it.
func (s *scan) scanKubelet(volume string, rootFD int, sub string, target cstr) (Snapshot, error) {
	if sub == "" {
		if id, ok := s.versionStat(rootFD, target); ok && s.unchangedVersion(target, id) {
			s.reuse = true
			return Snapshot{Root: s.root, Kind: KindKubelet, DataDir: target.String()}, nil
		}
	}
	var lastErr error
	for attempt := 1; attempt <= maxKubeletAttempts; attempt++ {
		if err := s.ctx.Err(); err != nil {
			return Snapshot{}, err
		}
		if attempt > 1 {
			var err error
			if target, err = s.readDataLink(rootFD); err != nil {
				return Snapshot{}, fmt.Errorf("readlink ..data: %w", err)
			}
		}
		s.reset()
		dataID, err := s.walkData(volume, rootFD, target, sub)
		if cerr := s.ctx.Err(); cerr != nil {
			return Snapshot{}, cerr
		}
		if errors.Is(err, ErrTooManyFiles) {
			return Snapshot{}, err
		}
		again, rerr := s.readDataLink(rootFD)
		if rerr != nil {
			return Snapshot{}, fmt.Errorf("readlink ..data: %w", rerr)
		}
		ver, _ := s.versionStat(rootFD, again)
		if again == target && ver.devIno == dataID {
			if err != nil {
				// Not a swap: the directory itself is unreadable.
				return Snapshot{}, err
			}
			if sub == "" {
				s.rs.version, s.rs.versionWalked = ver, s.start
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

// readDataLink returns the directory `..data` names. Kubelet always points
// it at a sibling `..<timestamp>` directory; anything else is refused rather
// than followed. While `..data` keeps its target, the same cstr is returned
// without allocating. When readlink fails (EINVAL: `..data` is no symlink;
// ENOENT: there is none) the error is its bare unix.Errno.
func (s *scan) readDataLink(rootFD int) (cstr, error) {
	buf := s.rs.linkBuf
	n, err := readlinkatC(s.raw, rootFD, dataLinkC, buf)
	if err != nil {
		return "", err
	}
	got := buf[:n]
	target := s.rs.dataTarget
	if string(got) != target.String() {
		if len(got) == 0 || string(got) == "." || string(got) == ".." || bytes.IndexByte(got, '/') >= 0 || n == len(buf) {
			return "", fmt.Errorf("..data points to %q, not a directory beside it", got)
		}
		target = makeCstr(string(got))
		s.rs.dataTarget = target
		s.rs.ctargetPath = makeCstr(filepath.Join(s.root, target.String()))
	}
	return target, nil
}

// quickKubelet is the idle tick of a kubelet volume: when `..data` still
// names the version last walked, unchanged (see unchangedVersion), it sets
// s.reuse after two syscalls by path, without opening anything. It is used
// only on filesystems where paths are not revalidated differently from
// descriptors (rawSafe), and for a root that is no symlink itself.
func (s *scan) quickKubelet() bool {
	rs := s.rs
	last := rs.last
	if last == nil || last.Kind != KindKubelet || !rs.notLink || rs.dataTarget == "" ||
		rs.fsMount != s.mnt || !rawSafe(rs.fsType) {
		return false
	}
	n, err := readlinkatC(s.raw, unix.AT_FDCWD, rs.cdataLink, rs.linkBuf)
	if err != nil || string(rs.linkBuf[:n]) != rs.dataTarget.String() {
		return false
	}
	var st unix.Stat_t
	if err := fstatatC(s.raw, unix.AT_FDCWD, rs.ctargetPath, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false
	}
	if !s.unchangedVersion(rs.dataTarget, version{devIno{st.Dev, st.Ino}, st.Mtim.Nano(), st.Ctim.Nano()}) {
		return false
	}
	s.reuse = true
	return true
}

// version identifies one version directory of a kubelet volume.
type version struct {
	devIno
	mtime, ctime int64
}

// versionStat returns the identity of the directory target; ok is false
// when it is gone (swapped and deleted: the caller retries).
func (s *scan) versionStat(rootFD int, target cstr) (version, bool) {
	var st unix.Stat_t
	if err := fstatatC(s.raw, rootFD, target, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return version{}, false
	}
	return version{devIno{st.Dev, st.Ino}, st.Mtim.Nano(), st.Ctim.Nano()}, true
}

// unchangedVersion reports whether the last snapshot still stands for the
// version target, identified as id, without walking it (see kubeletRewalk):
// the same directory, walked cleanly and recently, with all its links.
func (s *scan) unchangedVersion(target cstr, id version) bool {
	last := s.rs.last
	age := time.Duration(s.start - s.rs.versionWalked)
	return last != nil && last.Kind == KindKubelet && last.DataDir == target.String() &&
		s.rs.version == id && s.rs.linksDone == last.DataDir &&
		last.BytesRead == 0 && len(last.Errors) == 0 && len(last.Skipped) == 0 && len(last.LinksPending) == 0 &&
		age < s.h.rewalk && (s.h.verifyAfter <= 0 || age < s.h.verifyAfter)
}

// walkData walks the timestamped directory target, or its subdirectory sub,
// and returns the identity of target as opened. Symlinks inside are
// contained to what is walked, not to the volume.
func (s *scan) walkData(volume string, rootFD int, target cstr, sub string) (devIno, error) {
	fd, err := openatC(s.raw, rootFD, target, openDirFlags)
	if err != nil {
		return devIno{}, dataLinkErr(volume, target.String(), err)
	}
	var st unix.Stat_t
	if err := fstatRaw(s.raw, fd, &st); err != nil {
		closeRaw(s.raw, fd)
		return devIno{}, err
	}
	id := devIno{st.Dev, st.Ino}
	if sub != "" {
		for _, part := range strings.Split(sub, string(filepath.Separator)) {
			next, err := openat(fd, part, openDirFlags)
			unix.Close(fd)
			if err != nil {
				return id, err
			}
			fd = next
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return id, err
		}
	}
	defer closeRaw(s.raw, fd)
	if s.rs.dataRootFor != target || s.rs.dataSub != sub {
		s.rs.dataRoot, s.rs.dataRootFor, s.rs.dataSub = filepath.Join(volume, target.String(), sub), target, sub
	}
	s.rootPath = s.rs.dataRoot
	return id, s.walkTop(fd, &st)
}

// kubeletSubdir recognizes a root that is a directory key of a kubelet volume
// (CONFIG_DIR=/etc/config/tls, where kubelet made `tls -> ..data/tls`). It
// returns the volume and the key, so the scan can pin `..data` as for a
// whole volume instead of following the link into one version that may be
// deleted under the walk.
func (s *scan) kubeletSubdir() (volume, sub string) {
	n, err := readlinkatC(s.raw, unix.AT_FDCWD, s.rs.croot, s.rs.linkBuf)
	s.rs.notLink = err == unix.EINVAL
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
