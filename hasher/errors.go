package hasher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pollreload/pollreload/internal/filetype"
)

// ErrTooManyFiles is wrapped by the error Scan returns when a root holds more
// regular files than Options.MaxFiles; the error is a *TooManyFilesError.
var ErrTooManyFiles = errors.New("too many files")

// TooManyFilesError reports a root with more regular files than
// Options.MaxFiles, or (Other) more entries that are not regular files:
// directories, symlinks, special files, excluded files. The caller, who
// knows how the limit was configured, adds how to raise it.
type TooManyFilesError struct {
	Max   int // Options.MaxFiles
	Other bool
}

func (e *TooManyFilesError) Error() string {
	if e.Other {
		return fmt.Sprintf("more than %d directories, symlinks and other entries that are not regular files", e.Max)
	}
	return fmt.Sprintf("more than %d regular files", e.Max)
}

// Is makes errors.Is(err, ErrTooManyFiles) hold.
func (e *TooManyFilesError) Is(target error) bool { return target == ErrTooManyFiles }

// ErrFileTooLarge is wrapped by the ScanError (of kind "limit") of a file
// larger than Options.MaxFileSize; the ScanError's Err is a
// *FileTooLargeError.
var ErrFileTooLarge = errors.New("file too large")

// errFileTooLarge is the name the package uses.
var errFileTooLarge = ErrFileTooLarge

// FileTooLargeError reports a file larger than Options.MaxFileSize, which
// was not hashed. The caller, who knows how the limit was configured, adds
// how to raise it where the error is shown.
type FileTooLargeError struct {
	Max int64 // Options.MaxFileSize
	// Size is the size stat reported. Grew is set when stat said the file
	// fits but more than Max bytes were read: a file growing while it was
	// read, or one that reports no size (procfs, sysfs).
	Size int64
	Grew bool
}

func (e *FileTooLargeError) Error() string {
	if e.Grew {
		return fmt.Sprintf("more than %d bytes read, stat said %d: over the size limit", e.Max, e.Size)
	}
	return fmt.Sprintf("%d bytes, over the size limit of %d", e.Size, e.Max)
}

// Is makes errors.Is(err, ErrFileTooLarge) hold.
func (e *FileTooLargeError) Is(target error) bool { return target == ErrFileTooLarge }

// ErrTooDeep is wrapped by the ScanError (of kind "limit") of a directory
// nested deeper than Options.MaxDepth; its Err is a *TooDeepError.
var ErrTooDeep = errors.New("too deep")

// TooDeepError reports a directory more than Options.MaxDepth levels below
// the root, which was not walked. The ScanError's Path names it.
type TooDeepError struct {
	Max int // Options.MaxDepth
}

func (e *TooDeepError) Error() string {
	return fmt.Sprintf("directory nested more than %d levels below the root, not walked", e.Max)
}

// Is makes errors.Is(err, ErrTooDeep) hold.
func (e *TooDeepError) Is(target error) bool { return target == ErrTooDeep }

// ErrTotalTooLarge is wrapped by the error Scan returns when the regular
// files of a root add up to more than Options.MaxTotalSize; the error is a
// *TotalTooLargeError.
var ErrTotalTooLarge = errors.New("too many bytes")

// TotalTooLargeError reports a root whose files add up to more than
// Options.MaxTotalSize bytes. The scan stops before reading past it.
type TotalTooLargeError struct {
	Max int64 // Options.MaxTotalSize
}

func (e *TotalTooLargeError) Error() string {
	return fmt.Sprintf("regular files add up to more than %d bytes", e.Max)
}

// Is makes errors.Is(err, ErrTotalTooLarge) hold.
func (e *TotalTooLargeError) Is(target error) bool { return target == ErrTotalTooLarge }

// RootError is the error Scan returns: the root it scanned and why the
// scan failed. It is the one place a scan error names the root.
type RootError struct {
	Root string
	Err  error
}

func (e *RootError) Error() string { return fmt.Sprintf("scan %s: %v", e.Root, e.Err) }

// Unwrap returns the cause.
func (e *RootError) Unwrap() error { return e.Err }

// PseudoFilesystemError reports a root on a kernel pseudo-filesystem.
type PseudoFilesystemError struct {
	Name string // "proc", "sysfs", ...
}

func (e *PseudoFilesystemError) Error() string {
	return fmt.Sprintf("on %s, a kernel pseudo-filesystem whose files are not configuration", e.Name)
}

// errUnstable is returned when a kubelet volume's `..data` link kept moving
// during every attempt of one scan.
var errUnstable = errors.New("..data link kept moving during the scan")

// The kinds of a scan error (ErrorKind), bounded for metrics labels.
const (
	KindPermission   = "permission"
	KindNotFound     = "not_found"
	KindStale        = "stale"
	KindNotConnected = "not_connected"
	KindIO           = "io"
	KindLimit        = "limit"
	KindOther        = "other"
)

// ErrorKinds returns every kind ErrorKind can return, for a metric that
// creates its labels up front.
func ErrorKinds() []string {
	return []string{KindPermission, KindNotFound, KindStale, KindNotConnected, KindIO, KindLimit, KindOther}
}

// ErrorKind maps an error from Scan (or ScanError.Err) to one of the bounded
// kinds used in metrics labels (ErrorKinds). It returns "" for a nil error.
//
// The kinds let the caller tell a vanished NFS handle or a dead FUSE daemon
// (transient: keep the last good state and retry) from a limit that needs a
// configuration change.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, ErrTooManyFiles) || errors.Is(err, errFileTooLarge) || errors.Is(err, ErrTooDeep) || errors.Is(err, ErrTotalTooLarge) {
		return KindLimit
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EACCES, syscall.EPERM:
			return KindPermission
		case syscall.ENOENT, syscall.ENOTDIR:
			return KindNotFound
		case syscall.ESTALE:
			return KindStale
		case syscall.ENOTCONN, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EHOSTDOWN:
			return KindNotConnected
		case syscall.EIO, syscall.EREMOTEIO:
			return KindIO
		}
		return KindOther
	}
	switch {
	case errors.Is(err, fs.ErrPermission):
		return KindPermission
	case errors.Is(err, fs.ErrNotExist):
		return KindNotFound
	}
	return KindOther
}

// dataLinkError is a kubelet volume whose `..data` link does not lead to a
// directory. Kubelet's atomic writer keeps the files of the current version
// in a timestamped directory `..YYYY_MM_DD_hh_mm_ss.N` beside `..data`,
// which names it; the bare errno (ENOENT, ENOTDIR, ELOOP) would not say
// which link is broken nor how. It unwraps to the errno, so ErrorKind is
// unchanged.
type dataLinkError struct {
	target string // what `..data` names
	what   string // what the target is, when it exists
	err    error
}

func (e *dataLinkError) Error() string {
	const link = "..data (kubelet's link to the current version of the volume)"
	switch {
	case errors.Is(e.err, syscall.ENOENT):
		return fmt.Sprintf("%s names %s, which does not exist: a dangling link, left by a copy of the volume or an edit by hand (kubelet always writes the version directory before it points ..data at it); %v", link, e.target, e.err)
	case e.what == "symbolic link" || errors.Is(e.err, syscall.ELOOP):
		return fmt.Sprintf("%s names %s, which is another symbolic link, not a directory: kubelet never chains links, so this volume was edited by hand (the links may even loop); want ..data naming a timestamped directory beside it", link, e.target)
	case e.what != "":
		return fmt.Sprintf("%s names %s, which is a %s, not a directory; want ..data naming a timestamped directory beside it", link, e.target, e.what)
	}
	return fmt.Sprintf("%s names %s, which cannot be opened: %v", link, e.target, e.err)
}

func (e *dataLinkError) Unwrap() error { return e.err }

// dataLinkErr explains why the directory `..data` names in volume could not
// be opened (see dataLinkError). Other errors (EACCES, EIO) are returned as
// they are: the link is fine, the directory is not readable.
func dataLinkErr(volume, target string, err error) error {
	if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, syscall.ELOOP) {
		return err
	}
	e := &dataLinkError{target: target, err: err}
	if fi, lerr := os.Lstat(filepath.Join(volume, target)); lerr == nil {
		e.what = filetype.Name(fi.Mode())
	}
	return e
}
