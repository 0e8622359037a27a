//go:build linux && (amd64 || arm64)

package hasher

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// These are the few syscalls of a steady tick, taking names that already end
// in a NUL byte (see cstr). x/sys copies every name into a new NUL-terminated
// buffer on each call, which was most of what an unchanged tick allocated.

func fstatatC(dirfd int, name cstr, st *unix.Stat_t, flags int) error {
	_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))),
		uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0)
	return errnoErr(e)
}

func openatC(dirfd int, name cstr, flags int) (int, error) {
	for {
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))),
			uintptr(flags), 0, 0, 0)
		if e != unix.EINTR {
			return int(fd), errnoErr(e)
		}
	}
}

func readlinkatC(dirfd int, name cstr, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, unix.EINVAL
	}
	n, _, e := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	return int(n), errnoErr(e)
}

func statxC(dirfd int, name cstr, flags, mask int, stx *unix.Statx_t) error {
	_, _, e := unix.Syscall6(unix.SYS_STATX, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))),
		uintptr(flags), uintptr(mask), uintptr(unsafe.Pointer(stx)), 0)
	return errnoErr(e)
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}
