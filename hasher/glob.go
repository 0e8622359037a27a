package hasher

import (
	"fmt"

	"github.com/bmatcuk/doublestar/v4"
)

// Globs are path.Match patterns extended by doublestar: "**" matches any
// number of directories, so "**/*.pem" selects PEM files at any depth
// (and at the top) and "conf.d/**" everything under conf.d.

// ValidateGlobs reports the first pattern that cannot be parsed, so a bad
// INCLUDE or EXCLUDE value fails at startup instead of matching nothing.
func ValidateGlobs(globs []string) error {
	for _, g := range globs {
		if g == "" {
			return fmt.Errorf("empty glob")
		}
		if !doublestar.ValidatePattern(g) {
			return fmt.Errorf("glob %q: %w", g, doublestar.ErrBadPattern)
		}
	}
	return nil
}

// matchAny reports whether any glob matches the relative path or its base
// name, so "*.conf" selects files at any depth and "certs/*" one directory.
func matchAny(globs []string, rel, base string) bool {
	for _, g := range globs {
		if doublestar.MatchUnvalidated(g, rel) || doublestar.MatchUnvalidated(g, base) {
			return true
		}
	}
	return false
}
