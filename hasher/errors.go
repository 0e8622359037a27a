package hasher

import (
	"errors"
	"io/fs"
	"syscall"
)

// ErrTooManyFiles is wrapped by the error Scan returns when a root holds more
// regular files than Options.MaxFiles (the MAX_FILES setting).
var ErrTooManyFiles = errors.New("too many files")

// errFileTooLarge marks a file larger than Options.MaxFileSize. It is only
// ever reported inside a ScanError of kind "limit".
var errFileTooLarge = errors.New("file larger than MAX_FILE_SIZE")

// errUnstable is returned when a kubelet volume's `..data` link kept moving
// during every attempt of one scan.
var errUnstable = errors.New("..data link kept moving during the scan")

// ErrorKind maps an error from Scan (or ScanError.Err) to one of the bounded
// kinds used in metrics labels: "permission", "not_found", "stale",
// "not_connected", "io", "limit" or "other". It returns "" for a nil error.
//
// The kinds let the caller tell a vanished NFS handle or a dead FUSE daemon
// (transient: keep the last good state and retry) from a limit that needs a
// configuration change.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, ErrTooManyFiles) || errors.Is(err, errFileTooLarge) {
		return "limit"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EACCES, syscall.EPERM:
			return "permission"
		case syscall.ENOENT, syscall.ENOTDIR:
			return "not_found"
		case syscall.ESTALE:
			return "stale"
		case syscall.ENOTCONN, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EHOSTDOWN:
			return "not_connected"
		case syscall.EIO, syscall.EREMOTEIO:
			return "io"
		}
		return "other"
	}
	switch {
	case errors.Is(err, fs.ErrPermission):
		return "permission"
	case errors.Is(err, fs.ErrNotExist):
		return "not_found"
	}
	return "other"
}
