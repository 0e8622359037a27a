package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/signaler"
)

// TestAdviseNoTarget: the libraries say what they found; the main package
// adds the variable as the user spelt it and the pod-spec fix, keeping the
// error chain.
func TestAdviseNoTarget(t *testing.T) {
	p, err := signaler.NewProcess(signaler.ProcessOptions{Names: []string{"no-such-app-zz"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Reload(context.Background(), time.Now())
	cfg := Config{given: map[string]string{"PROCESS_NAME": "POLLRELOAD_PROCESS_NAME"}}
	got := advise(cfg, err)
	want := "no matching process: no process in /proc is named POLLRELOAD_PROCESS_NAME=no-such-app-zz (by comm, argv[0] or executable); if the app runs in another container of the pod, set shareProcessNamespace: true in the pod spec"
	if got.Error() != want {
		t.Errorf("advise = %q; want %q", got, want)
	}
	if !errors.Is(got, signaler.ErrNoTarget) || signaler.ResultOf(got) != signaler.ResultNoTarget {
		t.Errorf("advise lost the chain: %v", got)
	}
}

func TestAdviseTooManyFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := hasher.New(hasher.Options{MaxFiles: 2}).Scan(context.Background(), dir)
	got := advise(Config{}, err)
	want := "scan " + dir + ": more than 2 regular files (MAX_FILES=2; raise it or narrow INCLUDE/EXCLUDE)"
	if got.Error() != want {
		t.Errorf("advise = %q; want %q", got, want)
	}
	if !errors.Is(got, hasher.ErrTooManyFiles) || strings.Count(got.Error(), "scan ") != 1 {
		t.Errorf("advise = %q: want the chain kept and the prefix once", got)
	}
}
