package poller

import (
	"time"

	"github.com/pollreload/pollreload/hasher"
)

// This file is what the tracker compares: the content of all roots at one
// scan, and the change the targets must be told about.

// content is the combined content of all roots at one scan.
type content struct {
	Digest uint64
	Snaps  []*hasher.Snapshot // one per root, in Options.Roots order
}

// change is content that the targets must be told about.
type change struct {
	content
	seen time.Time // start of the first scan that saw this content
	// seenBy is when that scan ended: a target started later read this
	// content (or newer) at its start and needs no signal.
	seenBy time.Time
	since  time.Time // first undelivered change, for the latency histogram
}

// swapped reports whether a versioned root of b names another version than
// in a: it was swapped in between, maybe more than once.
func swapped(a, b []*hasher.Snapshot) bool {
	for i, s := range b {
		if i < len(a) && s.Version() != "" && s.Version() != a[i].Version() {
			return true
		}
	}
	return false
}

func cloneContent(c content) content {
	return content{Digest: c.Digest, Snaps: append([]*hasher.Snapshot(nil), c.Snaps...)}
}

// copyInto updates dst to the snapshots of src without allocating when the
// number of roots is the same.
func copyInto(dst *content, src content) {
	dst.Digest = src.Digest
	if len(dst.Snaps) == len(src.Snaps) {
		copy(dst.Snaps, src.Snaps)
		return
	}
	dst.Snaps = append(dst.Snaps[:0:0], src.Snaps...)
}
