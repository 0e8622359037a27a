package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is how check and hash print names and counts.

// count writes n with its noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// displayName returns a file or process name for one line of output: as it
// is, unless it holds a control character (a newline would forge a line of
// its own) or another rune strconv.IsPrint refuses (a bidi override, a line
// separator), is not valid UTF-8, or starts with a quote; then it is quoted
// as strconv.Quote does.
func displayName(s string) string {
	if !utf8.ValidString(s) || strings.HasPrefix(s, `"`) || strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// column returns s for one column of check's table: "-" when empty (an
// unreadable exe), quoted when it holds spaces, so columns stay apart.
func column(s string) string {
	switch {
	case s == "":
		return "-"
	case strings.ContainsAny(s, " \t"):
		return strconv.Quote(s)
	}
	return displayName(s)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
