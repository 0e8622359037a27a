//go:build linux && !(amd64 || arm64)

package hasher

import "golang.org/x/sys/unix"

// The portable versions of sys_linux.go, through x/sys (which copies names
// and always tells the scheduler).

func fstatatC(_ bool, dirfd int, name cstr, st *unix.Stat_t, flags int) error {
	return unix.Fstatat(dirfd, name.String(), st, flags)
}

func openatC(_ bool, dirfd int, name cstr, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name.String(), flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func readlinkatC(_ bool, dirfd int, name cstr, buf []byte) (int, error) {
	return unix.Readlinkat(dirfd, name.String(), buf)
}

func statxC(_ bool, dirfd int, name cstr, flags, mask int, stx *unix.Statx_t) error {
	return unix.Statx(dirfd, name.String(), flags, mask, stx)
}

func fstatRaw(_ bool, fd int, st *unix.Stat_t) error { return unix.Fstat(fd, st) }

func getdentsRaw(_ bool, fd int, buf []byte) (int, error) { return unix.Getdents(fd, buf) }

func closeRaw(_ bool, fd int) { unix.Close(fd) }
