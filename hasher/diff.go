package hasher

import "slices"

// Diff returns the relative paths added, changed (content or size) and
// removed between two snapshots of the same root, each sorted. A nil old
// snapshot means every file of new is added; a nil new one means every file
// of old is removed.
func Diff(old, new *Snapshot) (added, changed, removed []string) {
	var oldFiles, newFiles map[string]File
	if old != nil {
		oldFiles = old.Files
	}
	if new != nil {
		newFiles = new.Files
	}
	for p, nf := range newFiles {
		of, ok := oldFiles[p]
		switch {
		case !ok:
			added = append(added, p)
		case of != nf:
			changed = append(changed, p)
		}
	}
	for p := range oldFiles {
		if _, ok := newFiles[p]; !ok {
			removed = append(removed, p)
		}
	}
	slices.Sort(added)
	slices.Sort(changed)
	slices.Sort(removed)
	return added, changed, removed
}
