package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTargetReadsThroughVisibleLinks(t *testing.T) {
	dir := t.TempDir()
	w := NewKubeletWriter(dir)
	if _, err := w.Write(map[string]string{"a": "1", "sub/b": "2"}); err != nil {
		t.Fatal(err)
	}
	name := UniqueName("reloadtarget")
	tg := StartTarget(t, name, dir)
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", tg.PID()))
	if err != nil || string(comm) != name+"\n" {
		t.Errorf("comm %q (err %v); want %s", comm, err, name)
	}
	start := tg.Last(t)
	if want := map[string]string{"a": "1", "sub/b": "2"}; start.Event != "start" || !reflect.DeepEqual(start.Files, want) {
		t.Errorf("start record %+v; want files %v", start, want)
	}

	ts, err := w.Write(map[string]string{"a": "3", "c": "4"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, func() error {
		if n := len(tg.Reloads(t)); n != 1 {
			return fmt.Errorf("got %d reloads; want 1", n)
		}
		return nil
	})
	got := tg.Last(t)
	if want := map[string]string{"a": "3", "c": "4"}; !reflect.DeepEqual(got.Files, want) || len(got.Errors) != 0 {
		t.Errorf("reload read %v (errors %v); want %v", got.Files, got.Errors, want)
	}
	if got.DataBefore != ts || got.DataAfter != ts || got.Seq != 1 {
		t.Errorf("reload record seq %d ..data %q/%q; want seq 1, %q", got.Seq, got.DataBefore, got.DataAfter, ts)
	}

	// A dangling visible link (a key removed mid-swap) is reported, not fatal.
	if err := os.Symlink("..data/gone", filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	tg.Signal(syscall.SIGHUP)
	WaitFor(t, 10*time.Second, func() error {
		if n := len(tg.Reloads(t)); n != 2 {
			return fmt.Errorf("got %d reloads; want 2", n)
		}
		return nil
	})
	if got := tg.Last(t); len(got.Errors) != 1 {
		t.Errorf("errors %v; want one for the dangling link", got.Errors)
	}

	if err := tg.Stop(); err != nil {
		t.Errorf("target after SIGTERM: %v; want exit status 0", err)
	}
}

func TestMountBindfs(t *testing.T) {
	backing, mnt := t.TempDir(), t.TempDir()
	t.Run("mounted", func(t *testing.T) {
		MountBindfs(t, backing, mnt)
		if err := os.WriteFile(filepath.Join(backing, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		WaitFor(t, 10*time.Second, func() error {
			b, err := os.ReadFile(filepath.Join(mnt, "f"))
			if err != nil || string(b) != "x" {
				return fmt.Errorf("read through mount: %q, %v; want x", b, err)
			}
			return nil
		})
	})
	if ok, err := Mounted(mnt); err != nil || ok {
		t.Errorf("Mounted after the subtest's cleanup = %v, %v; want false", ok, err)
	}
}

func TestUniqueName(t *testing.T) {
	tests := []struct{ prefix, wantPrefix string }{
		{"soak", "soak-"},
		{"reloadtarget", "reloadta-"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			a, b := UniqueName(tt.prefix), UniqueName(tt.prefix)
			if len(a) > 15 || !strings.HasPrefix(a, tt.wantPrefix) {
				t.Errorf("UniqueName(%q) = %q; want at most 15 bytes starting %q", tt.prefix, a, tt.wantPrefix)
			}
			if a == b {
				t.Errorf("UniqueName(%q) twice = %q; want different names", tt.prefix, a)
			}
		})
	}
}
