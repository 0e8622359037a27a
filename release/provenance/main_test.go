package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	prov "github.com/in-toto/attestation/go/predicates/provenance/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// repoRoot is pollreload's module, whose go.sum and main package the tests
// describe.
const repoRoot = "../.."

func options(t *testing.T) Options {
	t.Helper()
	file := filepath.Join(t.TempDir(), "pollreload_1.2.3_linux_amd64.tar.gz")
	if err := os.WriteFile(file, []byte("tarball bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Options{
		Source:      repoRoot,
		Repo:        "https://github.com/pollreload/pollreload",
		Commit:      strings.Repeat("ab", 20),
		Version:     "1.2.3",
		BuilderID:   "https://github.com/pollreload/pollreload/blob/main/release/build.sh",
		BuildType:   "https://github.com/pollreload/pollreload/blob/main/release/build.sh@v1",
		Platforms:   []string{"linux/amd64", "linux/s390x", "linux/arm/v7"},
		External:    []string{"command=release/build.sh 1.2.3 OUTDIR"},
		Internal:    []string{"goBuild=linux/amd64: go build ...", "goBuild=linux/s390x: go build ..."},
		Tools:       []string{"go=go1.26.8", "buildah=1.28.2"},
		Deps:        []string{"go https://go.dev/dl/go1.26.8.linux-amd64.tar.gz -", "ca-certificates.crt - sha256:" + strings.Repeat("0f", 32)},
		SubjectDigs: []string{"pollreload_1.2.3_image index=sha256:" + strings.Repeat("1e", 32)},
		Files:       []string{file},
	}
}

// TestStatement builds the statement of a release and reads it back as a
// verifier would: an in-toto v1 statement whose subjects are the file's
// SHA-256 and the image index, and whose SLSA v1 predicate validates and
// names the commit, the builder, the parameters and every module the main
// package compiles in (with go.sum's hash), the same list go list prints.
func TestStatement(t *testing.T) {
	o := options(t)
	st, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(st)
	if err != nil {
		t.Fatal(err)
	}

	var doc struct {
		Type    string `json:"_type"`
		Subject []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("%v in\n%s", err, out)
	}
	if doc.Type != "https://in-toto.io/Statement/v1" || doc.PredicateType != "https://slsa.dev/provenance/v1" {
		t.Errorf("got _type %q, predicateType %q; want in-toto Statement v1 and SLSA provenance v1", doc.Type, doc.PredicateType)
	}
	sum := sha256.Sum256([]byte("tarball bytes"))
	if len(doc.Subject) != 2 || doc.Subject[0].Name != "pollreload_1.2.3_linux_amd64.tar.gz" ||
		doc.Subject[0].Digest["sha256"] != hex.EncodeToString(sum[:]) ||
		doc.Subject[1].Name != "pollreload_1.2.3_image index" || doc.Subject[1].Digest["sha256"] != strings.Repeat("1e", 32) {
		t.Errorf("got subjects %+v; want the tarball's SHA-256 and the image index", doc.Subject)
	}

	// The predicate parses back into the bindings' type and validates.
	var p prov.Provenance
	if err := protojson.Unmarshal(doc.Predicate, &p); err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := p.GetRunDetails().GetBuilder().GetId(); got != o.BuilderID {
		t.Errorf("got builder id %q; want %q", got, o.BuilderID)
	}
	if got := p.GetRunDetails().GetBuilder().GetVersion()["buildah"]; got != "1.28.2" {
		t.Errorf("got builder version buildah=%q; want 1.28.2", got)
	}
	ext := p.GetBuildDefinition().GetExternalParameters().AsMap()
	if ext["source"] != "git+https://github.com/pollreload/pollreload@"+o.Commit || ext["version"] != "1.2.3" || ext["command"] != "release/build.sh 1.2.3 OUTDIR" {
		t.Errorf("got external parameters %v", ext)
	}
	internal := p.GetBuildDefinition().GetInternalParameters().AsMap()
	if got, ok := internal["goBuild"].([]any); !ok || len(got) != 2 {
		t.Errorf("got internal goBuild %v; want both values of the repeated key", internal["goBuild"])
	}

	deps := p.GetBuildDefinition().GetResolvedDependencies()
	if len(deps) < 3 || deps[0].GetDigest()["gitCommit"] != o.Commit || deps[1].GetName() != "go" || deps[2].GetDigest()["sha256"] != strings.Repeat("0f", 32) {
		t.Fatalf("got first dependencies %v; want the source commit, then go and the CA bundle", deps[:min(3, len(deps))])
	}
	var modules []string
	for _, d := range deps[3:] {
		if len(d.GetDigest()["dirHash"]) != 64 || !strings.HasPrefix(d.GetUri(), "pkg:golang/"+d.GetName()+"@v") {
			t.Errorf("module %v has no dirHash or a wrong purl", d)
		}
		modules = append(modules, strings.TrimPrefix(d.GetUri(), "pkg:golang/"))
	}
	var want []string
	for _, goarch := range []string{"amd64", "s390x", "arm"} {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}}{{end}}{{end}}", ".")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
		got, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range strings.Fields(string(got)) {
			if !contains(want, m) {
				want = append(want, m)
			}
		}
	}
	if len(modules) != len(want) {
		t.Errorf("got %d modules %v; want go list's %d: %v", len(modules), modules, len(want), want)
	}
	for _, m := range want {
		if !contains(modules, m) {
			t.Errorf("module %s that go list -deps names is not a resolved dependency", m)
		}
	}
	// go.sum's h1: hash of one module, as hex.
	for _, d := range deps[3:] {
		if d.GetName() == "github.com/cespare/xxhash/v2" && d.GetDigest()["dirHash"] != "50bf35e7153d4aab059626f3ba08338d786883b6cbea85fd05b3599cbd9416fb" {
			t.Errorf("xxhash's dirHash is %s; want go.sum's h1:UL815xU9SqsFlibzuggzjXhog7bL6oX9BbNZnL2UFvs= as hex", d.GetDigest()["dirHash"])
		}
	}
}

// TestDeterministic: the same inputs give the same bytes, as the
// reproducible release needs (protojson alone varies its whitespace).
func TestDeterministic(t *testing.T) {
	o := options(t)
	var outs [][]byte
	for range 3 {
		st, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
	}
	if !bytes.Equal(outs[0], outs[1]) || !bytes.Equal(outs[0], outs[2]) {
		t.Errorf("three builds of the same statement differ:\n%s\n%s", outs[0], outs[1])
	}
}

// TestBadInputs: each mistake in the inputs is an error naming it, and no
// statement.
func TestBadInputs(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"missing builder", func(o *Options) { o.BuilderID = "" }, "-builder-id"},
		{"short commit", func(o *Options) { o.Commit = "abc" }, `-commit "abc" is not 40 hex digits`},
		{"no platform", func(o *Options) { o.Platforms = nil }, "at least one -platform"},
		{"missing file", func(o *Options) { o.Files = []string{"/nonexistent/file"} }, "no such file"},
		{"short subject digest", func(o *Options) { o.SubjectDigs = []string{"index=sha256:abcd"} }, "digest has incorrect length"},
		{"bad dependency", func(o *Options) { o.Deps = []string{"go only-two"} }, "is not 'NAME URI ALG:HEX'"},
		{"bad external", func(o *Options) { o.External = []string{"novalue"} }, `-external: "novalue" is not key=value`},
		{"no go.sum", func(o *Options) { o.Source = t.TempDir() }, "go.sum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options(t)
			tt.change(&o)
			st, err := Build(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, %v; want an error containing %q", st, err, tt.want)
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
