package charts

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// change is one item of the artifacthub.io/changes annotation.
type change struct {
	Kind        string `json:"kind"`
	Description string `json:"description"`
}

// TestChartMetadata checks what Artifact Hub and users read from Chart.yaml:
// home, sources, kubeVersion, the licence, the image (the appVersion's tag,
// the release's six platforms) and the changes, which must be CHANGELOG.md's entry for the
// appVersion exactly as release/build.sh stamps it.
func TestChartMetadata(t *testing.T) {
	var chart struct {
		AppVersion  string            `json:"appVersion"`
		Home        string            `json:"home"`
		Sources     []string          `json:"sources"`
		KubeVersion string            `json:"kubeVersion"`
		Annotations map[string]string `json:"annotations"`
	}
	readYAML(t, filepath.Join(chartDir, "Chart.yaml"), &chart)
	if !strings.HasPrefix(chart.Home, "https://") || len(chart.Sources) == 0 || !strings.HasPrefix(chart.Sources[0], "https://") {
		t.Errorf("got home %q and sources %q; want https URLs", chart.Home, chart.Sources)
	}
	if chart.KubeVersion == "" {
		t.Error("kubeVersion is not set")
	}

	if got := chart.Annotations["artifacthub.io/license"]; got != "Apache-2.0" {
		t.Errorf("got artifacthub.io/license %q; want Apache-2.0", got)
	}
	licence, err := os.ReadFile(filepath.Join("..", "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(licence), "Apache License\n                           Version 2.0, January 2004") {
		t.Error("../LICENSE is not the Apache License 2.0 the annotation names")
	}

	var images []struct {
		Name      string   `json:"name"`
		Image     string   `json:"image"`
		Platforms []string `json:"platforms"`
	}
	if err := yaml.UnmarshalStrict([]byte(chart.Annotations["artifacthub.io/images"]), &images); err != nil {
		t.Fatalf("artifacthub.io/images: %v", err)
	}
	wantImage := "ghcr.io/pollreload/pollreload:" + chart.AppVersion
	wantPlatforms := []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x", "linux/riscv64"}
	if len(images) != 1 || images[0].Image != wantImage || !reflect.DeepEqual(images[0].Platforms, wantPlatforms) {
		t.Errorf("got artifacthub.io/images %+v; want one image %s for %v, the platforms release/build.sh builds", images, wantImage, wantPlatforms)
	}

	var got []change
	if err := yaml.UnmarshalStrict([]byte(chart.Annotations["artifacthub.io/changes"]), &got); err != nil {
		t.Fatalf("artifacthub.io/changes: %v", err)
	}
	out, err := exec.Command("bash", filepath.Join("..", "release", "chart-changes.sh"), chart.AppVersion).Output()
	if err != nil {
		t.Fatalf("release/chart-changes.sh %s: %v", chart.AppVersion, err)
	}
	var want []change
	if err := yaml.UnmarshalStrict(out, &want); err != nil {
		t.Fatalf("release/chart-changes.sh output: %v\n%s", err, out)
	}
	if len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("artifacthub.io/changes is not CHANGELOG.md's entry for %s:\ngot  %+v\nwant %+v", chart.AppVersion, got, want)
	}
	for _, c := range got {
		if strings.Contains(c.Description, "\n") {
			t.Errorf("change %q spans lines; CHANGELOG.md bullets are one line each", c.Description)
		}
	}
}

// TestImageDigestWinsOverTag renders the sidecar's image with and without
// sidecar.image.digest, and with a malformed one, which the schema rejects.
func TestImageDigestWinsOverTag(t *testing.T) {
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"tag", nil, "ghcr.io/pollreload/pollreload:0.1.0"},
		{"digest", []string{"--set", "sidecar.image.digest=" + digest}, "ghcr.io/pollreload/pollreload@" + digest},
		{"digest and tag", []string{"--set", "sidecar.image.digest=" + digest, "--set", "sidecar.image.tag=9.9.9"}, "ghcr.io/pollreload/pollreload@" + digest},
		{"native sidecar with digest", []string{"--set", "sidecar.native=true", "--set", "sidecar.image.digest=" + digest}, "ghcr.io/pollreload/pollreload@" + digest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			deployment := onlyDeployment(t, decodeStrict(t, tc.name, render(t, chartDir, tc.args...)))
			sidecar := sidecarOf(&deployment.Spec.Template.Spec)
			if sidecar == nil {
				t.Fatal("no sidecar rendered")
			}
			if sidecar.Image != tc.want {
				t.Errorf("got image %q; want %q", sidecar.Image, tc.want)
			}
		})
	}
	t.Run("malformed digest", func(t *testing.T) {
		_, errOut, err := helm(t, "template", "test", chartDir, "--set", "sidecar.image.digest=latest")
		if err == nil || !strings.Contains(string(errOut), "sidecar.image.digest") {
			t.Errorf("got error %v, %s; want the schema to reject sidecar.image.digest=latest", err, errOut)
		}
	})
}
