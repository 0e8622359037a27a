package poller

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// This file tests changes that meet a delivery in flight.

// TestSwapDuringDeliveryReloadsAgain swaps a kubelet volume away and back
// while the reload is being delivered: the application, reading at the
// signal, may hold the intermediate version, so a second reload follows.
func TestSwapDuringDeliveryReloadsAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeletUpdate(t, dir, 1, map[string]string{"app.conf": "v1"})
	var once sync.Once
	rec := &recorder{fail: func(int) error {
		once.Do(func() {
			kubeletUpdate(t, dir, 3, map[string]string{"app.conf": "intermediate"})
			kubeletUpdate(t, dir, 4, map[string]string{"app.conf": "v2"})
		})
		return nil
	}}
	h := start(t, Options{Roots: []string{dir}, Targets: one(rec)})
	kubeletUpdate(t, dir, 2, map[string]string{"app.conf": "v2"})
	h.waitFor("two reloads", func() bool { return h.rec.count() == 2 })
	h.scans(5)
	if got := h.rec.count(); got != 2 {
		t.Errorf("reloads = %d; want 2 (the change, then once more for the swap during delivery)", got)
	}
}

// TestChangeDuringDeliveryIsDelivered changes a plain file while the reload
// is being delivered; the change must be delivered too.
func TestChangeDuringDeliveryIsDelivered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "a.conf")
	write(t, conf, "v1")
	var once sync.Once
	rec := &recorder{fail: func(int) error {
		once.Do(func() { write(t, conf, "v3") })
		return nil
	}}
	h := start(t, Options{Roots: []string{dir}, Targets: one(rec)})
	write(t, conf, "v2")
	h.waitFor("two reloads", func() bool { return h.rec.count() == 2 })
	h.scans(5)
	if got := h.rec.count(); got != 2 {
		t.Errorf("reloads = %d; want 2", got)
	}
}

// TestIdenticalSwapsAfterDeliveryAreNoChange makes sure the check after a
// delivery does not turn later identical-content swaps into reloads.
func TestIdenticalSwapsAfterDeliveryAreNoChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeletUpdate(t, dir, 1, map[string]string{"app.conf": "v1"})
	h := start(t, Options{Roots: []string{dir}})
	kubeletUpdate(t, dir, 2, map[string]string{"app.conf": "v2"})
	h.waitFor("the reload", func() bool { return h.rec.count() == 1 })
	h.scans(3)
	for v := 3; v < 8; v++ {
		kubeletUpdate(t, dir, v, map[string]string{"app.conf": "v2"})
		h.scans(2)
	}
	if got := h.rec.count(); got != 1 {
		t.Errorf("reloads = %d; want 1", got)
	}
}

// TestKubeletWaitsForVisibleLinks holds kubelet's window between the
// `..data` swap and the creation of an added key's visible link: no reload
// may go out while an application reading through the links would miss the
// new key, and one goes out as soon as the link is there.
func TestKubeletWaitsForVisibleLinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeletUpdate(t, dir, 1, map[string]string{"app.conf": "v1"})
	h := start(t, Options{Roots: []string{dir}, Settle: time.Hour})
	// kubeletUpdate's steps, stopped before the new key's link.
	ts := filepath.Join(dir, "..2026_11_22_01_00_00.2")
	write(t, filepath.Join(ts, "app.conf"), "v1")
	write(t, filepath.Join(ts, "new.conf"), "new")
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	h.scans(4)
	if got := h.rec.count(); got != 0 {
		t.Fatalf("reloads before the new key's link exists = %d; want 0", got)
	}
	if err := os.Symlink("..data/new.conf", filepath.Join(dir, "new.conf")); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the reload", func() bool { return h.rec.count() == 1 })
}
