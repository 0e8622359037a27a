package charts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "pollreload"

// requireTool returns the path of an external command, or skips the test
// when it is missing; with REQUIRE_TOOLS=1 (as in CI) it fails instead.
func requireTool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " not installed: " + install
	if os.Getenv("REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// helm runs the helm binary and returns its stdout, its stderr and the error
// of the run.
func helm(t *testing.T, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	bin := requireTool(t, "helm", "go install helm.sh/helm/v3/cmd/helm@v3.16.3")
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	// A private home, so a developer's repositories and plugins do not matter.
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// kubeVersion is the Kubernetes version the tests render for: one with
// native sidecars (1.29 and later). helm's own default, without a cluster,
// depends on how helm was built (v1.20 for `go install`).
const kubeVersion = "1.31.0"

// render runs `helm template` on chart for kubeVersion with the given extra
// arguments and fails the test if helm fails.
func render(t *testing.T, chart string, args ...string) []byte {
	t.Helper()
	out, errOut, err := helm(t, append([]string{"template", "test", chart, "--namespace", "demo", "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatalf("helm template %s %s: %v\n%s", chart, strings.Join(args, " "), err, errOut)
	}
	return out
}

// ciValuesFiles lists the chart's ci/*-values.yaml files.
func ciValuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no values files in %s/ci", chartDir)
	}
	return files
}

// copyDir copies the regular files of the tree src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}
