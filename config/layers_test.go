package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestLibrariesNameNoSetting: below the configuration step, no string
// literal names a configuration variable (taken from Config's envconfig
// tags) or a pod-spec field. The libraries return structured errors and
// descriptions; the variable as the user spelt it and the fix are added
// where they are shown (fix.go; the root renders the descriptions). Comments may name them.
func TestLibrariesNameNoSetting(t *testing.T) {
	words := append(Variables(), "shareProcessNamespace", "runAsUser", "securityContext")
	re := regexp.MustCompile(`\b(` + strings.Join(words, "|") + `)\b`)
	fset := token.NewFileSet()
	found := 0
	for _, dir := range []string{"hasher", "signaler", "poller", "verify", "metrics", "internal/filetype", "internal/logs"} {
		files, err := filepath.Glob(filepath.Join("..", dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no Go files in %s", dir)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatalf("%s: %v", fset.Position(lit.Pos()), err)
				}
				if m := re.FindString(s); m != "" {
					found++
					t.Errorf("%s: a literal names %s: %s", fset.Position(lit.Pos()), m, lit.Value)
				}
				return true
			})
		}
	}
	if found > 0 {
		t.Logf("%d literals name a setting below the configuration step", found)
	}
}
