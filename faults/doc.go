// Package faults holds pollreload's fault-injection tests. They run the real
// pollreload binary over filesystems that fail on purpose (a FUSE filesystem
// from faultfs that injects EIO, ESTALE, EACCES, ENOTCONN and hung reads; a
// bindfs mount killed or lazily unmounted mid-run; a root that vanishes; trees
// at the size limits) and check, through /metrics, /healthz and a real process
// counting the signals it receives, that a fault never causes a reload, is
// counted by kind, keeps the last good state, and that recovery reloads once
// exactly when the content changed.
//
// The package has no code outside its tests; it exists for `go test`.
package faults
