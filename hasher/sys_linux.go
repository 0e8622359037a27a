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

// Every unsafe.Pointer is turned into a uintptr in the argument list of the
// syscall itself, never in a helper: unix.Syscall6 and RawSyscall6 are
// nosplit, so a stack variable's address cannot go stale by a stack copy
// between the conversion and the kernel's write.

func errno(e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

func fstatatC(raw bool, dirfd int, name cstr, st *unix.Stat_t, flags int) error {
	var e unix.Errno
	if raw {
		_, _, e = unix.RawSyscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))), uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0)
	} else {
		_, _, e = unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))), uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0)
	}
	return errno(e)
}

func openatC(raw bool, dirfd int, name cstr, flags int) (int, error) {
	for {
		var fd uintptr
		var e unix.Errno
		if raw {
			fd, _, e = unix.RawSyscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))), uintptr(flags), 0, 0, 0)
		} else {
			fd, _, e = unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))), uintptr(flags), 0, 0, 0)
		}
		if e != unix.EINTR {
			return int(fd), errno(e)
		}
	}
}

func readlinkatC(raw bool, dirfd int, name cstr, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, unix.EINVAL
	}
	var n uintptr
	var e unix.Errno
	if raw {
		n, _, e = unix.RawSyscall6(unix.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	} else {
		n, _, e = unix.Syscall6(unix.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	}
	return int(n), errno(e)
}

func statxC(raw bool, dirfd int, name cstr, flags, mask int, stx *unix.Statx_t) error {
	var e unix.Errno
	if raw {
		_, _, e = unix.RawSyscall6(unix.SYS_STATX, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))), uintptr(flags), uintptr(mask), uintptr(unsafe.Pointer(stx)), 0)
	} else {
		_, _, e = unix.Syscall6(unix.SYS_STATX, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(string(name)))), uintptr(flags), uintptr(mask), uintptr(unsafe.Pointer(stx)), 0)
	}
	return errno(e)
}

func fstatRaw(raw bool, fd int, st *unix.Stat_t) error {
	if !raw {
		return unix.Fstat(fd, st)
	}
	_, _, e := unix.RawSyscall(unix.SYS_FSTAT, uintptr(fd), uintptr(unsafe.Pointer(st)), 0)
	return errno(e)
}

func getdentsRaw(raw bool, fd int, buf []byte) (int, error) {
	if !raw {
		return unix.Getdents(fd, buf)
	}
	n, _, e := unix.RawSyscall(unix.SYS_GETDENTS64, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	return int(n), errno(e)
}

func closeRaw(raw bool, fd int) {
	if !raw {
		unix.Close(fd)
		return
	}
	_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}
