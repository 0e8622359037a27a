// Package hasher takes content snapshots of configuration trees.
//
// A Hasher walks a root (a directory, a kubelet ConfigMap/Secret volume, or a
// single file), frames every regular file as relative path + size + content,
// and folds the frames into one xxhash digest. Permissions, owners and
// timestamps do not change the digest; content, adds, deletes and renames do.
//
// A Hasher remembers, per file, the stat signature it last hashed, so a steady
// scan of an unchanged tree reads no file content. Create one Hasher per
// process and call Scan for each root on every tick:
//
//	h := hasher.New(hasher.Options{Logger: logger})
//	snap, err := h.Scan(ctx, "/etc/app")
//
// A non-nil error means the root itself could not be scanned (missing, or a
// vanished mount); the caller keeps its last good state. Per-file failures are
// listed in Snapshot.Errors and never read as deletions: the file's last good
// digest is carried into the snapshot.
package hasher
