// Package hasher takes content snapshots of configuration trees.
//
// A Hasher walks a root (a directory, a kubelet ConfigMap/Secret volume, or a
// single file), frames every regular file as relative path + size + content
// digest, and folds the frames, in sorted path order, into one xxhash digest.
// Permissions, owners and timestamps do not change the digest; content, adds,
// deletes and renames do.
//
// A Hasher remembers, per root and file, the stat signature (device, inode,
// size, mtime, ctime) it last hashed, so a steady scan of an unchanged tree
// costs one fstatat per file and reads no content. A file whose timestamps lie
// within a couple of seconds of the scan that hashed it is read again on the
// next scan ("racy", as git calls it), because a coarse timestamp or an
// attribute cache can hide a write made in the same tick. On NFS the signature
// comes from openat+fstat, which revalidates the client's attribute cache.
// Create one Hasher per process and call Scan for each root on every tick:
//
//	h := hasher.New(hasher.Options{Logger: logger})
//	snap, err := h.Scan(ctx, "/etc/app")
//
// Scan reads only what belongs to the root:
//   - In a kubelet volume (a `..data` symlink at the root) only the directory
//     `..data` names is hashed, and if `..data` moves during the walk the walk
//     is repeated, so one snapshot never mixes two versions.
//   - In a plain tree, symlinks are followed only while they resolve inside
//     the root; absolute links, links that climb out with `..`, and loops are
//     listed in Snapshot.Skipped and logged once.
//   - Only regular files are opened, without blocking and without following
//     links; FIFOs, sockets and devices are skipped, and so is a kernel
//     pseudo-filesystem (proc, sysfs, ...) mounted below the root.
//
// A scan's work follows the tree's size, never its shape (walk.go): each
// directory is walked once per scan, known by device and inode, however
// many links or bind mounts lead to it (a repeat is a Snapshot.Aliases
// entry, framed into the digest); a directory that cannot be read carries
// its last good files over by binary search in the last scan's sorted list;
// and the walk keeps one path buffer, not a path string per directory.
// Options.MaxFiles, MaxFileSize, MaxDepth and MaxTotalSize bound it further
// (limits.go has the daemon's defaults and why).
//
// A steady tick allocates nothing: cstr.go keeps every name a tick passes to
// the kernel NUL-terminated, sys_linux.go makes those syscalls, and an
// unchanged scan returns the previous *Snapshot again (snapshots are
// read-only). A kubelet version that `..data` still names is not walked
// again for 30 s (kubelet.go).
//
// A non-nil error means the root itself could not be scanned (missing,
// unreadable, a vanished mount, too many files); the caller keeps its last
// good state, and ErrorKind names the cause. Per-file failures are listed in
// Snapshot.Errors and never read as deletions: the file's last good digest is
// carried into the snapshot.
package hasher
