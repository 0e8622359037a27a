package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/pollreload/pollreload/config"
	"github.com/pollreload/pollreload/hasher"
)

// This file is `pollreload hash`.

// runHash prints, for each path, its digest (seed 0, stable across runs and
// machines) and its files: the same digest the daemon compares, with the
// same INCLUDE, EXCLUDE and limits from the environment.
func runHash(ctx context.Context, paths, environ []string, stdout, stderr io.Writer) error {
	if len(paths) == 0 {
		return usageErr("hash needs at least one path, as in pollreload hash /etc/app")
	}
	cfg, err := config.Load(environ, nil)
	if err == nil {
		err = cfg.ValidateScan()
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	comp, err := newComponents(cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	h := comp.hasher
	failed := false
	for _, p := range paths {
		s, err := h.Scan(ctx, p)
		if err != nil {
			return cfg.Explained(err) // it names p
		}
		fmt.Fprintf(stdout, "%016x  %s  (%s, %s, %s)\n", s.Digest, displayName(p), s.Kind, count(len(s.Files), "file"), count(int(s.Bytes), "byte"))
		for _, name := range sortedNames(s.Files) {
			f := s.Files[name]
			fmt.Fprintf(stdout, "  %016x  %10d  %s\n", f.Digest, f.Size, displayName(name))
		}
		for _, name := range slices.Sorted(maps.Keys(s.Aliases)) {
			fmt.Fprintf(stdout, "  link (walked as %s)  %s\n", displayName(s.Aliases[name]), displayName(name))
		}
		for _, sk := range s.Skipped {
			fmt.Fprintf(stdout, "  skipped (%s)  %s\n", sk.Reason, displayName(sk.Path))
		}
		for _, e := range s.Errors {
			failed = true
			fmt.Fprintf(stdout, "  error (%s)  %s: %v\n", e.Kind, displayName(e.Path), cfg.Explain(e.Err))
		}
	}
	if failed {
		return errors.New("some files could not be read; their digests are missing above")
	}
	return nil
}

func sortedNames(files map[string]hasher.File) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
