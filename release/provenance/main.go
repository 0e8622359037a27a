// Command provenance writes the SLSA provenance (v1) of a pollreload release
// as an in-toto Statement (v1): the release's files and image index as
// subjects; the build type, the source commit, the version and the exact
// build commands as the build definition; the Go modules compiled into the
// binaries (with their go.sum hashes), the Go toolchain and the other inputs
// as resolved dependencies; the tools' versions as the builder's.
//
// release/build.sh runs it last, over the artifacts it has made:
//
//	provenance -source SRC -repo https://github.com/pollreload/pollreload \
//	  -commit SHA -version 1.2.3 -builder-id URI -build-type URI \
//	  -platform linux/amd64 ... -external key=value ... -internal key=value ... \
//	  -tool go=go1.26.8 ... -dependency 'NAME URI ALG:HEX' ... \
//	  -subject-digest NAME=sha256:HEX ... FILE...
//
// The statement is built with the in-toto attestation Go bindings and checked
// with their validators. It holds no time and no random value, so the same
// inputs give the same bytes (the release is byte-reproducible, this file
// too). release/sign.sh attaches its predicate to the image with cosign attest
// --type slsaprovenance1.
//
// This is its own module so that the bindings (and protobuf) never enter
// pollreload's module graph.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	prov "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// PredicateType is the SLSA provenance v1 predicate type, which cosign calls
// slsaprovenance1.
const PredicateType = "https://slsa.dev/provenance/v1"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "provenance: %v\n", err)
		os.Exit(1)
	}
}

// list is a repeatable flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ", ") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// Options is everything the statement is made from.
type Options struct {
	Source      string   // the exported source tree; go list runs there
	Repo        string   // https URL of the repository
	Commit      string   // the commit built (40 hex digits)
	Version     string   // the release version
	BuilderID   string   // runDetails.builder.id
	BuildType   string   // buildDefinition.buildType
	Platforms   []string // GOOS/GOARCH pairs built; modules are the union
	External    []string // key=value: buildDefinition.externalParameters
	Internal    []string // key=value: buildDefinition.internalParameters
	Tools       []string // name=version: runDetails.builder.version
	Deps        []string // "NAME URI ALG:HEX", "-" for an absent URI or digest
	SubjectDigs []string // NAME=sha256:HEX subjects not in files (the image index)
	Files       []string // subject files, hashed here
}

func run(args []string, stdout io.Writer) error {
	var o Options
	var platforms, external, internal, tools, deps, subjects list
	fs := flag.NewFlagSet("provenance", flag.ContinueOnError)
	fs.StringVar(&o.Source, "source", "", "source tree of the commit (go list runs there)")
	fs.StringVar(&o.Repo, "repo", "", "https URL of the repository")
	fs.StringVar(&o.Commit, "commit", "", "commit built, 40 hex digits")
	fs.StringVar(&o.Version, "version", "", "release version")
	fs.StringVar(&o.BuilderID, "builder-id", "", "URI of the builder (runDetails.builder.id)")
	fs.StringVar(&o.BuildType, "build-type", "", "URI of the build type")
	fs.Var(&platforms, "platform", "GOOS/GOARCH[/variant] built (repeatable)")
	fs.Var(&external, "external", "key=value external parameter (repeatable)")
	fs.Var(&internal, "internal", "key=value internal parameter (repeatable)")
	fs.Var(&tools, "tool", "name=version of a build tool (repeatable)")
	fs.Var(&deps, "dependency", "'NAME URI ALG:HEX' resolved dependency, - for none (repeatable)")
	fs.Var(&subjects, "subject-digest", "NAME=sha256:HEX subject (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Platforms, o.External, o.Internal, o.Tools, o.Deps, o.SubjectDigs = platforms, external, internal, tools, deps, subjects
	o.Files = fs.Args()
	st, err := Build(o)
	if err != nil {
		return err
	}
	out, err := Marshal(st)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// Build makes and validates the statement.
func Build(o Options) (*intoto.Statement, error) {
	switch {
	case o.Source == "" || o.Repo == "" || o.Commit == "" || o.Version == "" || o.BuilderID == "" || o.BuildType == "":
		return nil, errors.New("-source, -repo, -commit, -version, -builder-id and -build-type are required")
	case len(o.Platforms) == 0:
		return nil, errors.New("at least one -platform is required")
	}
	if b, err := hex.DecodeString(o.Commit); err != nil || len(b) != 20 {
		return nil, fmt.Errorf("-commit %q is not 40 hex digits", o.Commit)
	}

	subjects, err := subjects(o.Files, o.SubjectDigs)
	if err != nil {
		return nil, err
	}
	modules, err := Modules(o.Source, o.Platforms)
	if err != nil {
		return nil, err
	}
	ext, err := keyValues(o.External, map[string]any{
		"source":  fmt.Sprintf("git+%s@%s", o.Repo, o.Commit),
		"version": o.Version,
	})
	if err != nil {
		return nil, fmt.Errorf("-external: %w", err)
	}
	internal, err := keyValues(o.Internal, map[string]any{"platforms": toAny(o.Platforms)})
	if err != nil {
		return nil, fmt.Errorf("-internal: %w", err)
	}
	tools := map[string]string{}
	for _, t := range o.Tools {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-tool %q is not name=version", t)
		}
		tools[k] = v
	}

	resolved := []*intoto.ResourceDescriptor{{
		Name:   "source",
		Uri:    fmt.Sprintf("git+%s@%s", o.Repo, o.Commit),
		Digest: map[string]string{"gitCommit": o.Commit},
	}}
	for _, d := range o.Deps {
		rd, err := dependency(d)
		if err != nil {
			return nil, err
		}
		resolved = append(resolved, rd)
	}
	resolved = append(resolved, modules...)

	p := &prov.Provenance{
		BuildDefinition: &prov.BuildDefinition{
			BuildType:            o.BuildType,
			ExternalParameters:   ext,
			InternalParameters:   internal,
			ResolvedDependencies: resolved,
		},
		RunDetails: &prov.RunDetails{
			Builder: &prov.Builder{Id: o.BuilderID, Version: tools},
		},
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	predicate, err := toStruct(p)
	if err != nil {
		return nil, err
	}
	st := &intoto.Statement{
		Type:          intoto.StatementTypeUri,
		Subject:       subjects,
		PredicateType: PredicateType,
		Predicate:     predicate,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	return st, nil
}

// Marshal encodes the statement as indented JSON with a final newline.
// protojson varies its whitespace on purpose; compacting and indenting with
// encoding/json makes the bytes depend on the content only.
func Marshal(st *intoto.Statement) ([]byte, error) {
	raw, err := protojson.Marshal(st)
	if err != nil {
		return nil, err
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, err
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// subjects hashes the files (named by their base names) and adds the given
// digests.
func subjects(files, digests []string) ([]*intoto.ResourceDescriptor, error) {
	var out []*intoto.ResourceDescriptor
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("subject: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("subject %s: %w", f, err)
		}
		out = append(out, &intoto.ResourceDescriptor{
			Name:   filepath.Base(f),
			Digest: map[string]string{"sha256": hex.EncodeToString(h.Sum(nil))},
		})
	}
	for _, s := range digests {
		name, d, ok := strings.Cut(s, "=")
		alg, value, ok2 := strings.Cut(d, ":")
		if !ok || !ok2 || name == "" {
			return nil, fmt.Errorf("-subject-digest %q is not NAME=ALG:HEX", s)
		}
		out = append(out, &intoto.ResourceDescriptor{Name: name, Digest: map[string]string{alg: value}})
	}
	if len(out) == 0 {
		return nil, errors.New("no subjects: give the release's files")
	}
	return out, nil
}

// dependency parses "NAME URI ALG:HEX", where URI or ALG:HEX may be "-".
func dependency(s string) (*intoto.ResourceDescriptor, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return nil, fmt.Errorf("-dependency %q is not 'NAME URI ALG:HEX'", s)
	}
	rd := &intoto.ResourceDescriptor{Name: f[0]}
	if f[1] != "-" {
		rd.Uri = f[1]
	}
	if f[2] != "-" {
		alg, value, ok := strings.Cut(f[2], ":")
		if !ok {
			return nil, fmt.Errorf("-dependency %q: digest %q is not ALG:HEX", s, f[2])
		}
		rd.Digest = map[string]string{alg: value}
	}
	if err := rd.Validate(); err != nil {
		return nil, fmt.Errorf("-dependency %q: %w", s, err)
	}
	return rd, nil
}

// Modules lists the modules whose packages the main package of dir imports
// when built for any of the platforms, each with its go.sum hash as a dirHash
// digest (the h1: hash is the SHA-256 of the module's file list, base64).
func Modules(dir string, platforms []string) ([]*intoto.ResourceDescriptor, error) {
	sums, err := goSum(filepath.Join(dir, "go.sum"))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, p := range platforms {
		parts := strings.Split(p, "/")
		if len(parts) < 2 {
			return nil, fmt.Errorf("-platform %q is not GOOS/GOARCH[/variant]", p)
		}
		cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS="+parts[0], "GOARCH="+parts[1], "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list for %s: %w: %s", p, err, strings.TrimSpace(stderr.String()))
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				seen[line] = true
			}
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []*intoto.ResourceDescriptor
	for _, k := range keys {
		path, version, _ := strings.Cut(k, " ")
		h1, ok := sums[path+" "+version]
		if !ok {
			return nil, fmt.Errorf("go.sum has no h1: hash for %s %s", path, version)
		}
		out = append(out, &intoto.ResourceDescriptor{
			Name:   path,
			Uri:    "pkg:golang/" + path + "@" + version,
			Digest: map[string]string{string(intoto.AlgorithmDirHash): h1},
		})
	}
	return out, nil
}

// goSum reads the module hashes (not the go.mod ones) of a go.sum as hex.
func goSum(file string) (map[string]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || !strings.HasPrefix(f[2], "h1:") {
			return nil, fmt.Errorf("%s:%d: not 'path version h1:hash'", file, i+1)
		}
		if strings.HasSuffix(f[1], "/go.mod") {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(f[2], "h1:"))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("%s:%d: the h1: hash is not base64 SHA-256", file, i+1)
		}
		sums[f[0]+" "+f[1]] = hex.EncodeToString(b)
	}
	return sums, nil
}

// keyValues makes a Struct of base plus key=value pairs (a key given twice
// becomes a list).
func keyValues(pairs []string, base map[string]any) (*structpb.Struct, error) {
	m := base
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", p)
		}
		switch old := m[k].(type) {
		case nil:
			m[k] = v
		case string:
			m[k] = []any{old, v}
		case []any:
			m[k] = append(old, v)
		}
	}
	return structpb.NewStruct(m)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// toStruct converts a message to the Struct a Statement's predicate is.
func toStruct(m proto.Message) (*structpb.Struct, error) {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, s); err != nil {
		return nil, err
	}
	return s, nil
}
