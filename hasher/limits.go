package hasher

// The daemon's default limits (its MAX_* variables). Each is far above what
// a configuration directory holds, and together they bound what any one
// scan can cost, however the tree was written. Options left at zero mean no
// limit; these are what the main package sets unless told otherwise.
const (
	// DefaultMaxFiles bounds the regular files of a root, and separately
	// its other entries: a steady scan costs one fstatat per entry, about
	// 0.2 s for 100,000 on a local disk.
	DefaultMaxFiles = 100000
	// DefaultMaxFileSize is 64 times what Kubernetes allows a whole
	// ConfigMap or Secret (1 MiB). Reading it takes about 20 ms from the
	// page cache, under a second from a 100 MB/s NFS server; a sparse
	// 64 GiB file is refused from its stat without being read.
	DefaultMaxFileSize = 64 << 20
	// DefaultMaxDepth bounds the directory levels below a root. A
	// configuration tree is a few levels deep; 32 leaves room for
	// generated layouts while keeping the descriptors a walk holds open,
	// and the length of a path, small.
	DefaultMaxDepth = 32
	// DefaultMaxTotalSize bounds the bytes of all files of a root, and so
	// what a first scan (or a scan after everything changed) reads: about
	// 0.1 s from the page cache, 2.5 s at 100 MB/s, inside the 6 s after
	// which /healthz fails at the default POLL_INTERVAL and
	// HEALTH_MISSED_SCANS.
	DefaultMaxTotalSize = 256 << 20
)
