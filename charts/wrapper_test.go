package charts

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// wrapperArgs render the chart's nginx example in wrapper mode.
var wrapperArgs = []string{"--set", "sidecar.mode=wrapper", "--set-json", `sidecar.wrapper.command=["nginx","-g","daemon off;"]`}

// TestWrapperMode renders the chart with sidecar.mode=wrapper and checks the
// pod issue 18 asks for: no shareProcessNamespace and no pollreload
// container; an init container from pollreload's image that runs `copy`
// into an emptyDir; nginx run as `/pollreload-bin/pollreload -- nginx ...`
// with pollreload's environment (GOMEMLIMIT from nginx's own limit), the
// metrics port and probes on /healthz and /readyz; and, against the same
// chart in sidecar mode, the emptyDir the only addition to nginx's mounts.
// Pod Security "restricted" and the wiring checks run on it too.
func TestWrapperMode(t *testing.T) {
	objects := decodeStrict(t, "wrapper", render(t, chartDir, wrapperArgs...))
	if n := checkObjects(t, "wrapper", objects); n != 1 {
		t.Fatalf("got %d pod specs passing restricted; want 1", n)
	}
	spec := &onlyDeployment(t, objects).Spec.Template.Spec
	if spec.ShareProcessNamespace != nil {
		t.Errorf("got shareProcessNamespace %v; want it unset", *spec.ShareProcessNamespace)
	}
	if got := containerNames(spec); got != "[init:pollreload nginx]" {
		t.Errorf("got containers %s; want [init:pollreload nginx]", got)
	}
	if len(spec.InitContainers) != 1 || len(spec.Containers) != 1 {
		t.Fatalf("got %d init containers and %d containers; want 1 and 1", len(spec.InitContainers), len(spec.Containers))
	}
	copier, app := &spec.InitContainers[0], &spec.Containers[0]
	if got, want := copier.Args, []string{"copy", "/pollreload-bin"}; !reflect.DeepEqual(got, want) {
		t.Errorf("init container args %q; want %q", got, want)
	}
	if copier.RestartPolicy != nil {
		t.Errorf("init container has restartPolicy %s; want none (it must finish before nginx starts)", *copier.RestartPolicy)
	}
	if got, want := app.Command, []string{"/pollreload-bin/pollreload", "--", "nginx", "-g", "daemon off;"}; !reflect.DeepEqual(got, want) {
		t.Errorf("nginx command %q; want %q", got, want)
	}
	env := resolvedEnv(t, app)
	for name, want := range map[string]string{
		"CONFIG_DIR": "/etc/nginx/conf.d", "RELOAD_SIGNAL": "SIGHUP", "METRICS_ADDR": ":9533",
		"GOMEMLIMIT":   "67108864", // nginx's 64Mi limit: pollreload runs in nginx's container
		"PROCESS_NAME": "", "PID_FILE": "", "RELOAD_URL": "",
	} {
		if got, ok := env[name]; want == "" && ok {
			t.Errorf("got %s=%q; want it unset (wrapper mode refuses it)", name, got)
		} else if want != "" && got != want {
			t.Errorf("got %s=%q; want %q", name, got, want)
		}
	}
	ports := map[string]int32{}
	for _, p := range app.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["metrics"] != 9533 || ports["http"] != 8080 {
		t.Errorf("nginx ports %v; want http 8080 and metrics 9533", ports)
	}
	for kind, probe := range map[string]*corev1.Probe{"/healthz": app.LivenessProbe, "/readyz": app.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != kind || probe.HTTPGet.Port.StrVal != "metrics" {
			t.Errorf("got probe %+v; want one on %s at port metrics", probe, kind)
		}
	}

	sidecarSpec := &onlyDeployment(t, decodeStrict(t, "sidecar", render(t, chartDir))).Spec.Template.Spec
	var plain *corev1.Container
	for i := range sidecarSpec.Containers {
		if sidecarSpec.Containers[i].Name == "nginx" {
			plain = &sidecarSpec.Containers[i]
		}
	}
	if got, want := app.VolumeMounts[:len(app.VolumeMounts)-1], plain.VolumeMounts; !reflect.DeepEqual(got, want) {
		t.Errorf("nginx mounts %+v; want those of sidecar mode, %+v, and then the copy's", got, want)
	}
	added := app.VolumeMounts[len(app.VolumeMounts)-1]
	if added.Name != "pollreload-bin" || added.MountPath != "/pollreload-bin" || !added.ReadOnly {
		t.Errorf("added mount %+v; want pollreload-bin read-only at /pollreload-bin", added)
	}
	var newVolumes []string
	for _, v := range spec.Volumes {
		found := false
		for _, w := range sidecarSpec.Volumes {
			found = found || w.Name == v.Name
		}
		if !found {
			newVolumes = append(newVolumes, v.Name)
			if v.EmptyDir == nil {
				t.Errorf("volume %s is not an emptyDir", v.Name)
			}
		}
	}
	if got := strings.Join(newVolumes, ","); got != "pollreload-bin" {
		t.Errorf("volumes added to the pod: %s; want pollreload-bin only", got)
	}
}

// TestWrapperIncludedByAnotherChart renders testdata/pgbouncer in wrapper
// mode: the parent includes the wrapper templates beside the sidecar ones,
// and pgbouncer's own command becomes pollreload's child.
func TestWrapperIncludedByAnotherChart(t *testing.T) {
	chart := filepath.Join(t.TempDir(), "pgbouncer")
	copyDir(t, filepath.Join("testdata", "pgbouncer"), chart)
	copyDir(t, chartDir, filepath.Join(chart, "charts", "pollreload"))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"wrapper", []string{"--set", "pollreload.sidecar.mode=wrapper"}},
		{"wrapper, monitors", []string{"--set", "pollreload.sidecar.mode=wrapper", "--set", "pollreload.podMonitor.enabled=true", "--set", "pollreload.serviceMonitor.enabled=true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objects := decodeStrict(t, tc.name, render(t, chart, tc.args...))
			checkObjects(t, tc.name, objects)
			for _, p := range selectorProblems(objects) {
				t.Errorf("%s", p)
			}
			spec := &onlyDeployment(t, objects).Spec.Template.Spec
			if spec.ShareProcessNamespace != nil {
				t.Errorf("got shareProcessNamespace set; want it unset")
			}
			if got := containerNames(spec); got != "[init:pollreload pgbouncer]" {
				t.Errorf("got containers %s; want [init:pollreload pgbouncer]", got)
			}
			app := &spec.Containers[0]
			if got, want := append(append([]string{}, app.Command...), app.Args...), []string{"/pollreload-bin/pollreload", "--", "pgbouncer", "/etc/pgbouncer/pgbouncer.ini"}; !reflect.DeepEqual(got, want) {
				t.Errorf("pgbouncer's command and args %q; want %q", got, want)
			}
			if got, want := envOf(app)["CONFIG_DIR"], "/etc/pgbouncer"; got != want {
				t.Errorf("got CONFIG_DIR %q; want %q", got, want)
			}
		})
	}
}

// TestWiringCatchesBrokenWrapper breaks a rendered wrapper pod one way at a
// time and expects the wiring check to name it: each is a pod that would run
// the application without its pollreload, or without reloads while it looks
// healthy.
func TestWiringCatchesBrokenWrapper(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(*corev1.PodSpec)
		want    string
	}{
		{"no init container", func(s *corev1.PodSpec) { s.InitContainers = nil }, "no init container runs `pollreload copy`"},
		{"copy into another volume", func(s *corev1.PodSpec) { s.InitContainers[0].VolumeMounts[0].Name = "tmp" }, "no init container runs `pollreload copy`"},
		{"no mount of the copy", func(s *corev1.PodSpec) { s.Containers[0].VolumeMounts = s.Containers[0].VolumeMounts[:2] }, "mounts no volume at /pollreload-bin"},
		{"copy writable", func(s *corev1.PodSpec) { s.Containers[0].VolumeMounts[2].ReadOnly = false }, "mounts the copy of pollreload writable"},
		{"nginx's own readiness probe", func(s *corev1.PodSpec) { s.Containers[0].ReadinessProbe.HTTPGet.Path = "/healthz" }, "no readiness probe on /readyz"},
		{"shared PID namespace", func(s *corev1.PodSpec) { yes := true; s.ShareProcessNamespace = &yes }, "does not need"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &onlyDeployment(t, decodeStrict(t, tc.name, render(t, chartDir, wrapperArgs...))).Spec.Template.Spec
			if p := wiringProblems(spec); len(p) > 0 {
				t.Fatalf("the rendered wrapper already has problems: %v", p)
			}
			tc.breakIt(spec)
			if got := strings.Join(wiringProblems(spec), "\n"); !strings.Contains(got, tc.want) {
				t.Errorf("got problems %q; want one containing %q", got, tc.want)
			}
		})
	}
}

// TestWrapperValuesRejected: values that cannot make a working wrapper fail
// the render with a message naming them.
func TestWrapperValuesRejected(t *testing.T) {
	cases := []refusal{
		{"no command", []string{"--set", "sidecar.mode=wrapper"}, "sidecar.wrapper.command is empty"},
		{"wrapper and native", append([]string{"--set", "sidecar.native=true"}, wrapperArgs...), "sidecar.native is true and sidecar.mode is wrapper"},
		{"wrapper and reloadUrl", append([]string{"--set", "sidecar.reloadUrl=http://127.0.0.1:8080/-/reload"}, wrapperArgs...), "a wrapper reloads its child by signal"},
		{"unknown mode", []string{"--set", "sidecar.mode=daemon"}, "sidecar.mode must be one of the following"},
		{"relative binDir", append([]string{"--set", "sidecar.wrapper.binDir=bin"}, wrapperArgs...), "sidecar.wrapper.binDir"},
	}
	templateRefuses(t, cases)
}

// TestWrapperPolicyCheck weakens the init container and the wrapped
// container one way each and expects the Pod Security check to name them.
func TestWrapperPolicyCheck(t *testing.T) {
	cases := []refusal{
		{"init container escalates", []string{"--set", "sidecar.securityContext.allowPrivilegeEscalation=true"}, `container "pollreload" must set securityContext.allowPrivilegeEscalation=false`},
		{"wrapped app keeps a capability", []string{"--set-json", `app.securityContext.capabilities={"add":["KILL"]}`}, `container "nginx" must not include "KILL"`},
	}
	policyRefuses(t, wrapperArgs, cases)
}
