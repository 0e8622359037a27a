package hasher

import (
	"fmt"
	"path"
)

// ValidateGlobs reports the first pattern that path.Match cannot parse, so a
// bad INCLUDE or EXCLUDE value fails at startup instead of matching nothing.
func ValidateGlobs(globs []string) error {
	for _, g := range globs {
		if g == "" {
			return fmt.Errorf("empty glob")
		}
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("glob %q: %w", g, err)
		}
	}
	return nil
}

// matchAny reports whether any glob matches the relative path or its base
// name, so "*.conf" selects files at any depth and "certs/*" one directory.
func matchAny(globs []string, rel, base string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, rel); ok {
			return true
		}
		if ok, _ := path.Match(g, base); ok {
			return true
		}
	}
	return false
}
