package hasher

// Kind says how a root was read.
type Kind int

const (
	// KindPlain is an ordinary directory tree (hostPath, NFS, FUSE, ...).
	KindPlain Kind = iota
	// KindKubelet is a kubelet ConfigMap/Secret/projected volume: a `..data`
	// symlink at the root names the timestamped directory that holds the
	// current version. Its updates are atomic.
	KindKubelet
	// KindFile is a single regular file given as the root.
	KindFile
)

// String returns "plain", "kubelet" or "file".
func (k Kind) String() string {
	switch k {
	case KindKubelet:
		return "kubelet"
	case KindFile:
		return "file"
	default:
		return "plain"
	}
}

// File is one regular file of a snapshot.
type File struct {
	Size   int64
	Digest uint64 // xxhash (seed 0) of the content
}

// Snapshot is the state of one root at one scan.
type Snapshot struct {
	Root string
	Kind Kind
	// DataDir is, for a kubelet volume, the `..<timestamp>` directory that
	// `..data` named during the whole scan; empty otherwise.
	DataDir string
	// LinksPending lists, for a kubelet volume, the top-level keys of
	// DataDir whose visible `key -> ..data/key` link is not there yet:
	// kubelet creates them just after swapping `..data`, and an application
	// reading through them in between would miss those keys.
	LinksPending []string
	Digest       uint64 // over every framed file, in sorted path order
	// Files maps the slash-separated path relative to the root (for a
	// kubelet volume, relative to the directory `..data` names; for a single
	// file, its base name) to the file.
	Files map[string]File
	// Aliases maps the path of each symlink (or bind mount) that leads to a
	// directory already walked in this scan to the path that directory was
	// walked at ("." for the root). A directory is walked once per scan
	// however many links lead to it, so the files below an alias are listed
	// under its target only. Physical directories are walked first, then
	// links in the order found, so a link to a directory of the tree
	// points at that directory's own path. Each alias is framed into the
	// digest (its path and target), so adding, removing or retargeting a
	// link changes the digest while the work stays one walk per directory.
	Aliases map[string]string
	// Bytes is the summed size of Files.
	Bytes int64
	// BytesRead is the content this scan actually read (0 on a steady tick).
	BytesRead int64
	// Errors lists the files that could not be read this time. Each keeps its
	// last good entry in Files (or is absent if it never had one).
	Errors []ScanError
	// Skipped lists entries deliberately left out: FIFOs, sockets, devices,
	// symlinks that escape the root, symlink loops, excluded names.
	Skipped []Skip
}

// ScanError is a per-file read failure.
type ScanError struct {
	Path string // relative to the root
	Kind string // bounded: one of ErrorKinds()
	Err  error
}

func (e ScanError) Error() string { return e.Path + ": " + e.Err.Error() }

// Skip is an entry left out of a snapshot on purpose.
type Skip struct {
	Path string // relative to the root
	// Reason is bounded: "fifo", "socket", "device", "escapes_root",
	// "loop", "dangling", "excluded", "pseudo_filesystem" (a kernel
	// filesystem such as proc mounted below the root), "other".
	Reason string
	// Detail, for "pseudo_filesystem", names the filesystem ("proc").
	Detail string
}

// Alias is a link to a directory walked at another path in the same scan
// (see Snapshot.Aliases).
type Alias struct {
	Path   string // the link's path, relative to the root
	Target string // the path the directory was walked at; "." for the root
}

// Complete reports whether the snapshot holds one whole version that was
// swapped in atomically: a kubelet volume whose visible `key -> ..data/key`
// links are all there. Such content is never half way through an update, so
// it needs no settling; a plain tree or a single file may be.
func (s *Snapshot) Complete() bool {
	return s.Kind == KindKubelet && len(s.LinksPending) == 0
}

// Version names the atomically swapped version the snapshot read: for a
// kubelet volume, the directory `..data` named. It is "" for content without
// versions (plain trees, single files). Two snapshots with equal digests but
// different versions saw the volume swapped in between, maybe more than once.
func (s *Snapshot) Version() string { return s.DataDir }
