package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// repoURL is where the project's files are published; links to it from the
// docs, the alerts and the chart must name files and headings that exist.
const repoURL = "https://github.com/pollreload/pollreload/blob/main/"

var (
	mdLink     = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	mdHeading  = regexp.MustCompile(`^#{1,6} +(.+?) *#*$`)
	notInSlug  = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	blobURL    = regexp.MustCompile(regexp.QuoteMeta(repoURL) + `[^\s"'<>)]+`)
	docsToWalk = []string{"README.md", "docs/*.md", "bench/README.md", "charts/pollreload/README.md", "CHANGELOG.md"}
)

// headingAnchors returns the GitHub anchors of a markdown file's headings:
// lower case, punctuation dropped, spaces as dashes, "-1", "-2" for repeats.
func headingAnchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		m := mdHeading.FindStringSubmatch(line)
		if fence || m == nil {
			continue
		}
		slug := strings.ReplaceAll(notInSlug.ReplaceAllString(strings.ToLower(m[1]), ""), " ", "-")
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// TestDocLinksResolve checks every relative link of the README and the docs
// pages, and every link to the project's own published files (runbook URLs
// in the alerts included): the file exists, and so does the heading a
// fragment names.
func TestDocLinksResolve(t *testing.T) {
	var files []string
	for _, g := range docsToWalk {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	for _, g := range []string{"monitoring/*.yaml", "charts/pollreload/files/*", "monitoring/dashboard.json"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	if len(files) < 8 {
		t.Fatalf("found only %v; want README.md and the docs pages", files)
	}
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		anchors[path] = headingAnchors(string(b))
		return anchors[path]
	}
	checked := 0
	check := func(from, target, dest string) {
		checked++
		path, frag, _ := strings.Cut(dest, "#")
		if path == "" {
			path = from
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: link %s: %s does not exist", from, target, path)
			return
		}
		if frag != "" && strings.HasSuffix(path, ".md") && !anchorsOf(path)[frag] {
			t.Errorf("%s: link %s: %s has no heading #%s", from, target, path, frag)
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if strings.HasSuffix(f, ".md") {
			for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, frag, _ := strings.Cut(target, "#")
				dest := f
				if path != "" {
					dest = filepath.Join(filepath.Dir(f), path)
				}
				if frag != "" {
					dest += "#" + frag
				}
				check(f, target, dest)
			}
		}
		for _, u := range blobURL.FindAllString(text, -1) {
			check(f, u, strings.TrimPrefix(u, repoURL))
		}
	}
	t.Logf("%d links checked in %d files", checked, len(files))
}

// TestDesignListsEveryFile holds docs/design.md's layout table to the code:
// every file of the root package is named in a row of its own, and every
// file of a library package in a row whose path starts with the package's
// directory.
func TestDesignListsEveryFile(t *testing.T) {
	b, err := os.ReadFile("docs/design.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // first cell -> the whole row
	for _, line := range strings.Split(string(b), "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 2 && strings.HasPrefix(line, "| `") {
			rows[strings.TrimSpace(cells[1])] += line
		}
	}
	for _, dir := range []string{".", "config", "hasher", "signaler", "verify", "poller", "metrics", "internal/logs"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		var text string // the rows that describe dir
		for first, row := range rows {
			if dir == "." && !strings.Contains(first, "/") || dir != "." && strings.HasPrefix(first, "`"+dir+"/") {
				text += row
			}
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			if !strings.Contains(text, "`"+filepath.Base(f)+"`") && !strings.Contains(text, "`"+filepath.ToSlash(f)+"`") {
				t.Errorf("docs/design.md's layout table does not name %s", filepath.ToSlash(f))
			}
		}
	}
}
