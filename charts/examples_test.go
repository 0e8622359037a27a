package charts

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestExamples decodes every manifest in ../examples strictly, checks its pods
// against "restricted" and for broken wiring, and checks that every Secret,
// ConfigMap and claim a pod mounts is defined in the same file, so each
// example applies on its own.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no manifests in ../examples")
	}
	objects, pods := 0, 0
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			decoded := decodeStrict(t, file, data)
			passed := checkObjects(t, file, decoded)
			for _, p := range selectorProblems(decoded) {
				t.Errorf("%s: %s", file, p)
			}
			withSidecar := 0
			for _, o := range decoded {
				if _, spec, ok := podSpecOf(o.Value); ok {
					if sidecarOf(spec) != nil {
						withSidecar++
					}
					for _, missing := range undefinedReferences(spec, decoded) {
						t.Errorf("%s %s mounts %s, which the file does not define", o.Kind, o.Name, missing)
					}
				}
			}
			if withSidecar == 0 {
				t.Errorf("no pod with a pollreload sidecar in %s", file)
			}
			objects += len(decoded)
			pods += passed
		})
	}
	t.Logf("summary: %d example objects decoded strictly; %d pod specs pass Pod Security restricted", objects, pods)
}

// undefinedReferences lists the Secrets, ConfigMaps and claims spec mounts
// that are not among objects, and claims whose PersistentVolume is missing.
func undefinedReferences(spec *corev1.PodSpec, objects []object) []string {
	defined := map[string]bool{}
	for _, o := range objects {
		defined[o.Kind+"/"+o.Name] = true
		if pvc, ok := o.Value.(*corev1.PersistentVolumeClaim); ok && pvc.Spec.VolumeName != "" {
			defined["claim-volume/"+pvc.Name] = defined["PersistentVolume/"+pvc.Spec.VolumeName]
		}
	}
	var missing []string
	for _, v := range spec.Volumes {
		var ref string
		switch {
		case v.Secret != nil:
			ref = "Secret/" + v.Secret.SecretName
		case v.ConfigMap != nil:
			ref = "ConfigMap/" + v.ConfigMap.Name
		case v.PersistentVolumeClaim != nil:
			ref = "PersistentVolumeClaim/" + v.PersistentVolumeClaim.ClaimName
			if defined[ref] && !defined["claim-volume/"+v.PersistentVolumeClaim.ClaimName] {
				missing = append(missing, "the PersistentVolume of "+ref)
			}
		default:
			continue
		}
		if !defined[ref] {
			missing = append(missing, ref)
		}
	}
	return missing
}
