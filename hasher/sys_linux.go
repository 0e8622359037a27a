//go:build linux && (amd64 || arm64)

package hasher

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// These are the syscalls of a steady tick. They take names that already end
// in a NUL byte (see cstr): x/sys copies every name into a new buffer on each
// call, which was most of what an unchanged tick allocated.
//
// With raw set they enter the kernel without telling the Go scheduler
// (RawSyscall). A scheduled syscall wakes the runtime's monitor thread, which
// then polls every 20 µs for as long as the scan runs: on an idle daemon that
// was most of the wake-ups per tick. A raw syscall keeps its P while in the
// kernel, so it is used only where nothing can block for long: a kubelet
// volume on a local filesystem (see rawSafe), never NFS or FUSE, where a hung
// server would take a P with it.

func sys6(raw bool, trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, error) {
	var r uintptr
	var e unix.Errno
	if raw {
		r, _, e = unix.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	} else {
		r, _, e = unix.Syscall6(trap, a1, a2, a3, a4, a5, a6)
	}
	if e != 0 {
		return r, e
	}
	return r, nil
}

func ptr(c cstr) uintptr { return uintptr(unsafe.Pointer(unsafe.StringData(string(c)))) }

func fstatatC(raw bool, dirfd int, name cstr, st *unix.Stat_t, flags int) error {
	_, err := sys6(raw, unix.SYS_NEWFSTATAT, uintptr(dirfd), ptr(name), uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0)
	return err
}

func openatC(raw bool, dirfd int, name cstr, flags int) (int, error) {
	for {
		fd, err := sys6(raw, unix.SYS_OPENAT, uintptr(dirfd), ptr(name), uintptr(flags), 0, 0, 0)
		if err != unix.EINTR {
			return int(fd), err
		}
	}
}

func readlinkatC(raw bool, dirfd int, name cstr, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, unix.EINVAL
	}
	n, err := sys6(raw, unix.SYS_READLINKAT, uintptr(dirfd), ptr(name), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	return int(n), err
}

func statxC(raw bool, dirfd int, name cstr, flags, mask int, stx *unix.Statx_t) error {
	_, err := sys6(raw, unix.SYS_STATX, uintptr(dirfd), ptr(name), uintptr(flags), uintptr(mask), uintptr(unsafe.Pointer(stx)), 0)
	return err
}

func fstatRaw(raw bool, fd int, st *unix.Stat_t) error {
	_, err := sys6(raw, unix.SYS_FSTAT, uintptr(fd), uintptr(unsafe.Pointer(st)), 0, 0, 0, 0)
	return err
}

func getdentsRaw(raw bool, fd int, buf []byte) (int, error) {
	n, err := sys6(raw, unix.SYS_GETDENTS64, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
	return int(n), err
}

func closeRaw(raw bool, fd int) {
	_, _ = sys6(raw, unix.SYS_CLOSE, uintptr(fd), 0, 0, 0, 0, 0)
}
