package hasher

import "slices"

// Diff returns the relative paths added, changed (content or size) and
// removed between two snapshots of the same root, each sorted. A nil old
// snapshot means every file of new is added; a nil new one means every file
// of old is removed. Aliases count as entries too: a link to a directory
// walked elsewhere that appears, goes, or leads to another directory.
func Diff(old, new *Snapshot) (added, changed, removed []string) {
	var oldFiles, newFiles map[string]File
	var oldAliases, newAliases map[string]string
	if old != nil {
		oldFiles, oldAliases = old.Files, old.Aliases
	}
	if new != nil {
		newFiles, newAliases = new.Files, new.Aliases
	}
	added, changed, removed = diffMaps(oldFiles, newFiles, added, changed, removed)
	added, changed, removed = diffMaps(oldAliases, newAliases, added, changed, removed)
	slices.Sort(added)
	slices.Sort(changed)
	slices.Sort(removed)
	return added, changed, removed
}

func diffMaps[V comparable](old, new map[string]V, added, changed, removed []string) ([]string, []string, []string) {
	for p, nv := range new {
		ov, ok := old[p]
		switch {
		case !ok:
			added = append(added, p)
		case ov != nv:
			changed = append(changed, p)
		}
	}
	for p := range old {
		if _, ok := new[p]; !ok {
			removed = append(removed, p)
		}
	}
	return added, changed, removed
}
