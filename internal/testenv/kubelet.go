package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Names kubelet reserves in a ConfigMap/Secret volume.
const (
	DataLink    = "..data"
	dataTmpLink = "..data_tmp"
)

// KubeletWriter updates a directory the way kubelet's AtomicWriter updates a
// ConfigMap, Secret or projected volume, step for step:
//
//  1. write every file into a new directory `..YYYY_MM_DD_HH_MM_SS.N`;
//  2. point a new symlink `..data_tmp` at it;
//  3. rename `..data_tmp` over `..data` (the atomic switch);
//  4. create the user-visible links `KEY -> ..data/KEY` that are missing
//     (one per top-level name; nested keys are reached through them);
//  5. remove the visible links of top-level names that are gone;
//  6. delete the previous timestamped directory.
//
// So between steps 3 and 5 the volume holds the new `..data` together with
// links that are dangling or still missing, exactly what an application and
// pollreload meet on a real node.
//
// One difference is deliberate: kubelet skips a write whose content equals
// what is on disk, Write always swaps. Other projectors (and a kubelet
// restart) do swap to identical content, and pollreload must not reload for
// that.
type KubeletWriter struct {
	// Dir is the volume's mount point, the directory pollreload watches.
	Dir string
	// Mode is the permission of written files; 0 means 0644, kubelet's
	// default.
	Mode fs.FileMode
	// AfterSwap, if set, runs after `..data` names the new directory and
	// before the visible links are fixed: the window in which a new key has
	// no link yet and a removed key's link dangles. Tests use it to hold
	// the window open, as a loaded node does.
	AfterSwap func()
}

// NewKubeletWriter returns a writer for the volume at dir, which must exist.
func NewKubeletWriter(dir string) *KubeletWriter {
	return &KubeletWriter{Dir: dir}
}

// Write replaces the volume's content with files, which maps slash-separated
// relative paths (keys, possibly nested) to their content. It returns the
// base name of the new timestamped directory, which `..data` now names.
func (w *KubeletWriter) Write(files map[string]string) (string, error) {
	for p := range files {
		if err := validKey(p); err != nil {
			return "", err
		}
	}
	mode := w.Mode
	if mode == 0 {
		mode = 0o644
	}
	dataPath := filepath.Join(w.Dir, DataLink)
	oldTs, err := os.Readlink(dataPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", dataPath, err)
	}
	var stale []string
	if oldTs != "" {
		if stale, err = staleTopLevel(filepath.Join(w.Dir, oldTs), files); err != nil {
			return "", err
		}
	}

	// (1) Kubelet names the directory with os.MkdirTemp and a UTC timestamp
	// prefix, and forces 0755 whatever the umask.
	tsDir, err := os.MkdirTemp(w.Dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return "", fmt.Errorf("create timestamped dir: %w", err)
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return "", fmt.Errorf("chmod %s: %w", tsDir, err)
	}
	for _, p := range sortedKeys(files) {
		full := filepath.Join(tsDir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", fmt.Errorf("create dir for %s: %w", p, err)
		}
		if err := os.WriteFile(full, []byte(files[p]), mode); err != nil {
			return "", fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.Chmod(full, mode); err != nil {
			return "", fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	tsName := filepath.Base(tsDir)

	// (2) and (3): the switch.
	tmpPath := filepath.Join(w.Dir, dataTmpLink)
	if err := os.Symlink(tsName, tmpPath); err != nil {
		return "", fmt.Errorf("link %s: %w", dataTmpLink, err)
	}
	if err := os.Rename(tmpPath, dataPath); err != nil {
		return "", fmt.Errorf("rename %s over %s: %w", dataTmpLink, DataLink, err)
	}

	if w.AfterSwap != nil {
		w.AfterSwap()
	}

	// (4) Links are created only when missing; an existing one already
	// points through ..data and so at the new content.
	for _, top := range topLevel(files) {
		link := filepath.Join(w.Dir, top)
		if _, err := os.Readlink(link); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("read link %s: %w", top, err)
		}
		if err := os.Symlink(DataLink+"/"+top, link); err != nil {
			return "", fmt.Errorf("link %s: %w", top, err)
		}
	}

	// (5)
	for _, top := range stale {
		if err := os.Remove(filepath.Join(w.Dir, top)); err != nil {
			return "", fmt.Errorf("remove stale link %s: %w", top, err)
		}
	}

	// (6)
	if oldTs != "" {
		if err := os.RemoveAll(filepath.Join(w.Dir, oldTs)); err != nil {
			return "", fmt.Errorf("remove %s: %w", oldTs, err)
		}
	}
	return tsName, nil
}

// validKey applies kubelet's rules for payload paths.
func validKey(p string) error {
	if p == "" || strings.HasPrefix(p, "/") {
		return fmt.Errorf("key %q: must be a non-empty relative path", p)
	}
	parts := strings.Split(p, "/")
	for _, part := range parts {
		if part == ".." || part == "" || part == "." {
			return fmt.Errorf("key %q: must not contain empty, '.' or '..' elements", p)
		}
	}
	if strings.HasPrefix(parts[0], "..") {
		return fmt.Errorf("key %q: must not start with '..'", p)
	}
	return nil
}

// topLevel returns the sorted first path elements of the keys of files.
func topLevel(files map[string]string) []string {
	seen := map[string]bool{}
	var tops []string
	for p := range files {
		top, _, _ := strings.Cut(p, "/")
		if !seen[top] {
			seen[top] = true
			tops = append(tops, top)
		}
	}
	sort.Strings(tops)
	return tops
}

// staleTopLevel lists the top-level names of the old timestamped directory
// that the new payload no longer has. Only those get their visible link
// removed: a nested key is reached through its top-level link.
func staleTopLevel(oldDir string, files map[string]string) ([]string, error) {
	entries, err := os.ReadDir(oldDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", oldDir, err)
	}
	keep := map[string]bool{}
	for _, top := range topLevel(files) {
		keep[top] = true
	}
	var stale []string
	for _, e := range entries {
		if !keep[e.Name()] {
			stale = append(stale, e.Name())
		}
	}
	return stale, nil
}
