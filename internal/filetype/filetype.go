// Package filetype names a file's type in words for messages: "FIFO (named
// pipe)" rather than the mode string "p---------". It is the one such table
// of pollreload's packages (the hasher, the PID file, the verification log
// and the configuration's path checks all name what they found with it).
package filetype

import "io/fs"

// Name names the type of a file of mode m: "regular file", "directory",
// "symbolic link", "FIFO (named pipe)", "socket", "character device",
// "block device", or "special file" for any other.
func Name(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeNamedPipe != 0:
		return "FIFO (named pipe)"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "block device"
	case t&fs.ModeSymlink != 0:
		return "symbolic link"
	case t&fs.ModeDir != 0:
		return "directory"
	case t == 0:
		return "regular file"
	}
	return "special file"
}
