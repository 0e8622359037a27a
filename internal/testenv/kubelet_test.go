package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// tsDirName is kubelet's timestamped directory name: UTC time and the
// random suffix of os.MkdirTemp.
var tsDirName = regexp.MustCompile(`^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$`)

func TestKubeletWriter(t *testing.T) {
	dir := t.TempDir()
	w := NewKubeletWriter(dir)

	steps := []struct {
		name  string
		files map[string]string
	}{
		{"first write", map[string]string{"a.conf": "A1", "b.conf": "B1", "sub/c.conf": "C1"}},
		{"change a, drop b, add d", map[string]string{"a.conf": "A2", "sub/c.conf": "C1", "d.conf": "D2"}},
		{"identical content still swaps", map[string]string{"a.conf": "A2", "sub/c.conf": "C1", "d.conf": "D2"}},
		{"drop the nested key", map[string]string{"a.conf": "A3"}},
	}
	prevTs := ""
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			ts, err := w.Write(step.files)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if !tsDirName.MatchString(ts) {
				t.Errorf("timestamped dir %q; want ..YYYY_MM_DD_HH_MM_SS.N", ts)
			}
			if ts == prevTs {
				t.Errorf("Write reused %s; want a new timestamped dir per write", ts)
			}
			if got, err := os.Readlink(filepath.Join(dir, DataLink)); err != nil || got != ts {
				t.Errorf("..data -> %q (err %v); want %q", got, err, ts)
			}
			fi, err := os.Stat(filepath.Join(dir, ts))
			if err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("timestamped dir mode %v (err %v); want 0755", fi.Mode().Perm(), err)
			}

			// The root holds exactly ..data, the new ts dir and one link per
			// top-level key: no ..data_tmp, no old dir, no stale link.
			var gotRoot []string
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				gotRoot = append(gotRoot, e.Name())
			}
			wantRoot := []string{DataLink, ts}
			for _, top := range topLevel(step.files) {
				wantRoot = append(wantRoot, top)
			}
			sort.Strings(wantRoot)
			if !reflect.DeepEqual(gotRoot, wantRoot) {
				t.Errorf("root entries %v; want %v", gotRoot, wantRoot)
			}
			for _, top := range topLevel(step.files) {
				if got, err := os.Readlink(filepath.Join(dir, top)); err != nil || got != "..data/"+top {
					t.Errorf("%s -> %q (err %v); want ..data/%s", top, got, err, top)
				}
			}
			for key, want := range step.files {
				got, err := os.ReadFile(filepath.Join(dir, key))
				if err != nil || string(got) != want {
					t.Errorf("visible %s = %q (err %v); want %q", key, got, err, want)
				}
				fi, err := os.Stat(filepath.Join(dir, ts, key))
				if err != nil || fi.Mode().Perm() != 0o644 {
					t.Errorf("%s mode %v (err %v); want 0644", key, fi.Mode().Perm(), err)
				}
			}
			prevTs = ts
		})
	}
}

func TestKubeletWriterRejectsReservedKeys(t *testing.T) {
	for _, key := range []string{"", "/abs", "..data", "..x/y", "a/../b", "a//b", "./a"} {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := NewKubeletWriter(dir).Write(map[string]string{key: "x"}); err == nil {
				t.Errorf("Write with key %q succeeded; want an error", key)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("rejected write left %d entries; want none", len(entries))
			}
		})
	}
}

func ExampleKubeletWriter() {
	dir, _ := os.MkdirTemp("", "volume")
	defer os.RemoveAll(dir)
	w := NewKubeletWriter(dir)
	w.Write(map[string]string{"nginx.conf": "events {}\n", "conf.d/app.conf": "server {}\n"})

	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		if tsDirName.MatchString(name) {
			name = "..TIMESTAMP"
		}
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if tsDirName.MatchString(target) {
			target = "..TIMESTAMP"
		}
		fmt.Println(strings.TrimSpace(name + " " + arrow(target)))
	}
	// Output:
	// ..TIMESTAMP
	// ..data -> ..TIMESTAMP
	// conf.d -> ..data/conf.d
	// nginx.conf -> ..data/nginx.conf
}

func arrow(target string) string {
	if target == "" {
		return ""
	}
	return "-> " + target
}

func TestKubeletWriterAfterSwapSeesTheWindow(t *testing.T) {
	dir := t.TempDir()
	w := NewKubeletWriter(dir)
	if _, err := w.Write(map[string]string{"old": "1"}); err != nil {
		t.Fatal(err)
	}
	var inWindow struct {
		newVisible, oldDangling bool
	}
	w.AfterSwap = func() {
		_, err := os.Lstat(filepath.Join(dir, "new"))
		inWindow.newVisible = err == nil
		_, err = os.Stat(filepath.Join(dir, "old")) // follows the link
		inWindow.oldDangling = err != nil
	}
	if _, err := w.Write(map[string]string{"new": "2"}); err != nil {
		t.Fatal(err)
	}
	if inWindow.newVisible || !inWindow.oldDangling {
		t.Errorf("in the window: new key visible %v, old link dangling %v; want false, true", inWindow.newVisible, inWindow.oldDangling)
	}
}
