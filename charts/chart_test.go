package charts

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestChartRendersValidObjects lints and renders the chart with its default
// values and each ci/*-values.yaml, then decodes every object strictly and
// checks every pod spec against "restricted" and for broken wiring.
func TestChartRendersValidObjects(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{{name: "default"}}
	for _, file := range ciValuesFiles(t) {
		cases = append(cases, struct {
			name string
			args []string
		}{name: strings.TrimSuffix(filepath.Base(file), "-values.yaml"), args: []string{"-f", file}})
	}
	cases = append(cases, []struct {
		name string
		args []string
	}{
		{"native sidecar", []string{"--set", "sidecar.native=true"}},
		{"native sidecar, HTTP mode", []string{"--set", "sidecar.native=true", "-f", "pollreload/ci/http-reload-values.yaml"}},
		{"native sidecar, no metrics", []string{"--set", "sidecar.native=true", "-f", "pollreload/ci/no-metrics-values.yaml"}},
		{"native sidecar, monitors", []string{"--set", "sidecar.native=true", "-f", "pollreload/ci/monitors-values.yaml"}},
		{"rules and dashboard", []string{"--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true"}},
		{"wrapper", wrapperArgs},
		{"wrapper, no metrics", append([]string{"--set", "sidecar.metrics.enabled=false"}, wrapperArgs...)},
		{"wrapper, monitors", append([]string{"-f", "pollreload/ci/monitors-values.yaml"}, wrapperArgs...)},
		{"native by mode", []string{"--set", "sidecar.mode=native"}},
	}...)

	objects, pods := 0, 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if out, errOut, err := helm(t, append([]string{"lint", "--strict", "--kube-version", kubeVersion, chartDir}, tc.args...)...); err != nil {
				t.Fatalf("helm lint --strict %v: %v\n%s%s", tc.args, err, out, errOut)
			}
			decoded := decodeStrict(t, tc.name, render(t, chartDir, tc.args...))
			passed := checkObjects(t, tc.name, decoded)
			for _, o := range decoded {
				// Issue 9: a Service named like the chart injects
				// POLLRELOAD_SERVICE_HOST and the like into every pod.
				if _, spec, ok := podSpecOf(o.Value); ok && (spec.EnableServiceLinks == nil || *spec.EnableServiceLinks) {
					t.Errorf("%s: %s %s: enableServiceLinks is not false", tc.name, o.Kind, o.Name)
				}
			}
			for _, p := range selectorProblems(decoded) {
				t.Errorf("%s: %s", tc.name, p)
			}
			t.Logf("%d objects, %d pod specs pass restricted", len(decoded), passed)
			objects += len(decoded)
			pods += passed
		})
	}
	t.Logf("summary: %d rendered objects decoded strictly; %d pod specs pass Pod Security restricted", objects, pods)
}

// TestSidecarRendersOnlyWhenEnabled checks the "pollreload.sidecar" and
// "pollreload.shareProcessNamespace" templates in each mode: a template that
// never renders, or renders when disabled, fails here.
func TestSidecarRendersOnlyWhenEnabled(t *testing.T) {
	cases := []struct {
		name          string
		args          []string
		wantSidecar   bool
		wantSharedPID bool
		wantEnv       map[string]string // "" means absent
		wantProbes    bool
		wantNative    bool
	}{
		{
			name:          "enabled by default, signal mode",
			wantSidecar:   true,
			wantSharedPID: true,
			wantEnv:       map[string]string{"CONFIG_DIR": "/etc/nginx/conf.d", "PROCESS_NAME": "nginx", "RELOAD_SIGNAL": "SIGHUP", "METRICS_ADDR": ":9533", "RELOAD_URL": ""},
			wantProbes:    true,
		},
		{
			name: "disabled",
			args: []string{"--set", "sidecar.enabled=false"},
		},
		{
			name:          "native sidecar in initContainers",
			args:          []string{"--set", "sidecar.native=true"},
			wantSidecar:   true,
			wantSharedPID: true,
			wantEnv:       map[string]string{"CONFIG_DIR": "/etc/nginx/conf.d", "PROCESS_NAME": "nginx", "METRICS_ADDR": ":9533"},
			wantProbes:    true,
			wantNative:    true,
		},
		{
			name: "native sidecar disabled",
			args: []string{"--set", "sidecar.native=true", "--set", "sidecar.enabled=false"},
		},
		{
			name:        "native sidecar without metrics has no probes",
			args:        []string{"--set", "sidecar.native=true", "-f", "pollreload/ci/no-metrics-values.yaml"},
			wantSidecar: true, wantSharedPID: true, wantNative: true,
		},
		{
			name:        "HTTP mode needs no shared PID namespace",
			args:        []string{"-f", "pollreload/ci/http-reload-values.yaml"},
			wantSidecar: true,
			wantEnv:     map[string]string{"RELOAD_URL": "http://127.0.0.1:8080/-/reload", "RELOAD_METHOD": "POST", "PROCESS_NAME": "", "RELOAD_SIGNAL": ""},
			wantProbes:  true,
		},
		{
			name:          "metrics disabled drops port and probes",
			args:          []string{"-f", "pollreload/ci/no-metrics-values.yaml"},
			wantSidecar:   true,
			wantSharedPID: true,
			wantEnv:       map[string]string{"CONFIG_DIR": "/etc/nginx/conf.d,/etc/nginx/extra", "RELOAD_TARGETS": "oldest"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			deployment := onlyDeployment(t, decodeStrict(t, tc.name, render(t, chartDir, tc.args...)))
			spec := &deployment.Spec.Template.Spec
			if got := containerNames(spec); !strings.Contains(got, "nginx") {
				t.Errorf("got containers %s; want nginx among them", got)
			}
			sidecar := sidecarOf(spec)
			if got := sidecar != nil; got != tc.wantSidecar {
				t.Fatalf("got sidecar rendered %v (containers %s); want %v", got, containerNames(spec), tc.wantSidecar)
			}
			if got := spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace; got != tc.wantSharedPID {
				t.Errorf("got shareProcessNamespace %v; want %v", got, tc.wantSharedPID)
			}
			if sidecar == nil {
				return
			}
			env := envOf(sidecar)
			for name, want := range tc.wantEnv {
				if got, ok := env[name]; want == "" && ok {
					t.Errorf("got %s=%q; want it unset", name, got)
				} else if want != "" && got != want {
					t.Errorf("got %s=%q; want %q", name, got, want)
				}
			}
			if got := sidecar.LivenessProbe != nil && sidecar.ReadinessProbe != nil; got != tc.wantProbes {
				t.Errorf("got probes %v; want %v", got, tc.wantProbes)
			}
			if got := len(sidecar.Ports) > 0; got != tc.wantProbes {
				t.Errorf("got metrics port %v; want %v", got, tc.wantProbes)
			}
			checkForm(t, spec, sidecar, tc.wantNative, tc.wantProbes)
			if got, want := resolvedEnv(t, sidecar)["GOMEMLIMIT"], "67108864"; got != want {
				t.Errorf("got GOMEMLIMIT %q; want %s, the 64Mi memory limit in bytes", got, want)
			}
		})
	}
}

// checkForm checks which form the sidecar took: a native sidecar is only
// in initContainers, with restartPolicy Always and (with metrics) a
// startupProbe on /readyz; a plain one is only in containers, with neither.
func checkForm(t *testing.T, spec *corev1.PodSpec, sidecar *corev1.Container, wantNative, wantProbes bool) {
	t.Helper()
	inInit := isNative(spec, sidecar)
	if inInit != wantNative {
		t.Errorf("got sidecar in initContainers %v (containers %s); want %v", inInit, containerNames(spec), wantNative)
	}
	for _, c := range spec.Containers {
		if inInit && c.Name == sidecar.Name {
			t.Errorf("native sidecar %s is also in containers", c.Name)
		}
	}
	gotAlways := sidecar.RestartPolicy != nil && *sidecar.RestartPolicy == corev1.ContainerRestartPolicyAlways
	if gotAlways != wantNative {
		t.Errorf("got restartPolicy Always %v; want %v", gotAlways, wantNative)
	}
	gotStartup := sidecar.StartupProbe != nil && sidecar.StartupProbe.HTTPGet != nil && len(sidecar.Ports) > 0 &&
		sidecar.StartupProbe.HTTPGet.Path == "/readyz" && sidecar.StartupProbe.HTTPGet.Port.StrVal == sidecar.Ports[0].Name
	if want := wantNative && wantProbes; gotStartup != want || (!want && sidecar.StartupProbe != nil) {
		t.Errorf("got startupProbe %+v; want one on /readyz at the metrics port: %v", sidecar.StartupProbe, want)
	}
}

// TestWiringCatchesBrokenNativeSidecar breaks a rendered native sidecar one
// way at a time and expects the wiring check to name it, so that a passing
// check of the native form means something.
func TestWiringCatchesBrokenNativeSidecar(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(*corev1.Container)
		want    string
	}{
		{"no restartPolicy", func(c *corev1.Container) { c.RestartPolicy = nil }, "init container without restartPolicy Always"},
		{"no startupProbe", func(c *corev1.Container) { c.StartupProbe = nil }, "no startupProbe on /readyz"},
		{"startupProbe on /healthz", func(c *corev1.Container) { c.StartupProbe.HTTPGet.Path = "/healthz" }, "no startupProbe on /readyz"},
		{"startupProbe on a missing port", func(c *corev1.Container) { c.StartupProbe.HTTPGet.Port.StrVal = "metrix" }, `startup probe uses undeclared port "metrix"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &onlyDeployment(t, decodeStrict(t, tc.name, render(t, chartDir, "--set", "sidecar.native=true"))).Spec.Template.Spec
			if p := wiringProblems(spec); len(p) > 0 {
				t.Fatalf("the rendered native sidecar already has problems: %v", p)
			}
			tc.breakIt(sidecarOf(spec))
			if got := strings.Join(wiringProblems(spec), "\n"); !strings.Contains(got, tc.want) {
				t.Errorf("got problems %q; want one containing %q", got, tc.want)
			}
		})
	}
}

// TestIncludedByAnotherChart renders testdata/pgbouncer, a chart that lists
// this one as a dependency and includes its templates in its own pod, Service
// and monitors: the chart's first use, in each form of the sidecar.
func TestIncludedByAnotherChart(t *testing.T) {
	chart := filepath.Join(t.TempDir(), "pgbouncer")
	copyDir(t, filepath.Join("testdata", "pgbouncer"), chart)
	copyDir(t, chartDir, filepath.Join(chart, "charts", "pollreload"))

	monitors := []string{"--set", "pollreload.podMonitor.enabled=true", "--set", "pollreload.serviceMonitor.enabled=true"}
	cases := []struct {
		name        string
		args        []string
		wantKinds   string
		wantSidecar bool
		wantNative  bool
	}{
		{name: "enabled", wantKinds: "Secret,Service,Deployment", wantSidecar: true},
		{name: "native", args: []string{"--set", "pollreload.sidecar.native=true"}, wantKinds: "Secret,Service,Deployment", wantSidecar: true, wantNative: true},
		{name: "disabled", args: []string{"--set", "pollreload.sidecar.enabled=false"}, wantKinds: "Secret,Service,Deployment"},
		{name: "native disabled", args: []string{"--set", "pollreload.sidecar.enabled=false", "--set", "pollreload.sidecar.native=true"}, wantKinds: "Secret,Service,Deployment"},
		{name: "monitors", args: monitors, wantKinds: "Secret,Service,Deployment,PodMonitor,ServiceMonitor", wantSidecar: true},
		{name: "monitors, native", args: append([]string{"--set", "pollreload.sidecar.native=true"}, monitors...), wantKinds: "Secret,Service,Deployment,PodMonitor,ServiceMonitor", wantSidecar: true, wantNative: true},
		{name: "rules and dashboard", args: []string{"--set", "pollreload.prometheusRule.enabled=true", "--set", "pollreload.grafanaDashboard.enabled=true"},
			wantKinds: "Secret,ConfigMap,Service,Deployment,PrometheusRule", wantSidecar: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objects := decodeStrict(t, tc.name, render(t, chart, tc.args...))
			var kinds []string
			for _, o := range objects {
				kinds = append(kinds, o.Kind)
			}
			// app.enabled=false: none of the nginx example may leak into the parent.
			if got := strings.Join(kinds, ","); got != tc.wantKinds {
				t.Errorf("got kinds %s; want %s", got, tc.wantKinds)
			}
			checkObjects(t, tc.name, objects)
			for _, p := range selectorProblems(objects) {
				t.Errorf("%s: %s", tc.name, p)
			}
			spec := &onlyDeployment(t, objects).Spec.Template.Spec
			sidecar := sidecarOf(spec)
			if got := sidecar != nil; got != tc.wantSidecar {
				t.Fatalf("got sidecar rendered %v (containers %s); want %v", got, containerNames(spec), tc.wantSidecar)
			}
			if got := spec.ShareProcessNamespace != nil; got != tc.wantSidecar {
				t.Errorf("got shareProcessNamespace set %v; want %v", got, tc.wantSidecar)
			}
			if sidecar == nil {
				if len(spec.InitContainers) > 0 {
					t.Errorf("got init containers %s with the sidecar disabled", containerNames(spec))
				}
				return
			}
			checkForm(t, spec, sidecar, tc.wantNative, true)
			env := envOf(sidecar)
			if got, want := env["CONFIG_DIR"]+" "+env["PROCESS_NAME"], "/etc/pgbouncer pgbouncer"; got != want {
				t.Errorf("got CONFIG_DIR and PROCESS_NAME %q; want %q", got, want)
			}
		})
	}
}

// TestValuesRejected checks that values.schema.json and the templates'
// own checks make helm fail, with a message naming the problem.
func TestValuesRejected(t *testing.T) {
	cases := []refusal{
		{"unknown key", []string{"--set", "sidecar.pollIntervall=5s"}, "Additional property pollIntervall is not allowed"},
		{"unknown top-level key", []string{"--set", "sidecars.enabled=true"}, "Additional property sidecars is not allowed"},
		{"wrong type", []string{"--set", "sidecar.enabled=yes"}, "sidecar.enabled: Invalid type. Expected: boolean, given: string"},
		{"port not a number", []string{"--set", "sidecar.metrics.port=metrics"}, "sidecar.metrics.port: Invalid type. Expected: integer, given: string"},
		{"bad log format", []string{"--set", "sidecar.logFormat=xml"}, "sidecar.logFormat"},
		{"bad HTTP method", []string{"--set", "sidecar.reloadMethod=DELETE"}, "sidecar.reloadMethod"},
		{"bad duration", []string{"--set", "sidecar.pollInterval=2"}, "sidecar.pollInterval"},
		{"no directory", []string{"--set-json", "sidecar.configDirs=[]"}, "sidecar.configDirs"},
		{"no reload target", []string{"--set", "sidecar.processName="}, "set sidecar.processName or sidecar.pidFile"},
		{"UIDs differ in signal mode", []string{"--set", "sidecar.securityContext.runAsUser=1000"}, "must equal app.securityContext.runAsUser"},
		{"monitor without metrics", []string{"--set", "podMonitor.enabled=true", "--set", "sidecar.metrics.enabled=false"}, "podMonitor.enabled needs"},
		{"service monitor without metrics", []string{"--set", "serviceMonitor.enabled=true", "--set", "sidecar.metrics.enabled=false"}, "serviceMonitor.enabled needs"},
		{"native sidecar before Kubernetes 1.29", []string{"--set", "sidecar.native=true", "--kube-version", "1.28.9"}, "sidecar.native needs Kubernetes 1.29 or later"},
		{"native not a boolean", []string{"--set", "sidecar.native=yes"}, "sidecar.native: Invalid type. Expected: boolean, given: string"},
		{"unknown rule key", []string{"--set", "prometheusRule.enable=true"}, "Additional property enable is not allowed"},
		{"dashboard label not a string", []string{"--set-json", `grafanaDashboard.labels={"grafana_dashboard":1}`}, "grafanaDashboard.labels.grafana_dashboard: Invalid type. Expected: string, given: integer"},
	}
	templateRefuses(t, cases)
}

// TestPolicyCheckCatchesViolations weakens one setting at a time and expects
// the Pod Security check to name it, so a passing check means something.
func TestPolicyCheckCatchesViolations(t *testing.T) {
	cases := []refusal{
		{"privilege escalation", []string{"--set", "sidecar.securityContext.allowPrivilegeEscalation=true"}, "allowPrivilegeEscalation != false"},
		{"capabilities kept", []string{"--set-json", `sidecar.securityContext.capabilities={"add":["KILL"]}`}, "capabilities"},
		{"root allowed", []string{"--set", "sidecar.securityContext.runAsNonRoot=false", "--set", "podSecurityContext.runAsNonRoot=false"}, "runAsNonRoot != true"},
		{"no seccomp", []string{"--set", "sidecar.securityContext.seccompProfile.type=Unconfined"}, "seccompProfile"},
		// The same checks reach a native sidecar among the init containers.
		{"native: privilege escalation", []string{"--set", "sidecar.native=true", "--set", "sidecar.securityContext.allowPrivilegeEscalation=true"}, `container "pollreload" must set securityContext.allowPrivilegeEscalation=false`},
		{"native: capabilities kept", []string{"--set", "sidecar.native=true", "--set-json", `sidecar.securityContext.capabilities={"add":["KILL"]}`}, `container "pollreload" must not include "KILL"`},
	}
	policyRefuses(t, nil, cases)
}

// TestImageTagIsAppVersion keeps the sidecar's default tag (which a parent
// chart sees) equal to the chart's appVersion.
func TestImageTagIsAppVersion(t *testing.T) {
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	var values struct {
		Sidecar struct {
			Image struct {
				Tag string `json:"tag"`
			} `json:"image"`
		} `json:"sidecar"`
	}
	readYAML(t, filepath.Join(chartDir, "Chart.yaml"), &chart)
	readYAML(t, filepath.Join(chartDir, "values.yaml"), &values)
	if got, want := values.Sidecar.Image.Tag, chart.AppVersion; got != want {
		t.Errorf("got sidecar.image.tag %q; want appVersion %q", got, want)
	}
}

// TestEveryValueHasComment requires a comment line directly above every leaf
// value in values.yaml, or above one of its parents below the top level
// (so `resources:` may document its requests and limits at once).
func TestEveryValueHasComment(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, missing := range uncommentedValues(string(data)) {
		t.Errorf("values.yaml: %s has no comment", missing)
	}
}

// keyLine matches a mapping key line of values.yaml.
var keyLine = regexp.MustCompile(`^(\s*)([A-Za-z][A-Za-z0-9_-]*):\s*(.*)$`)

// uncommentedValues returns the dotted paths of leaf values with no comment
// on themselves or on a parent below the top level.
func uncommentedValues(text string) []string {
	lines := strings.Split(text, "\n")
	type parent struct {
		indent    int
		key       string
		commented bool
	}
	var stack []parent
	var missing []string
	isContent := func(s string) bool {
		s = strings.TrimSpace(s)
		return s != "" && !strings.HasPrefix(s, "#")
	}
	indentOf := func(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
	for i := 0; i < len(lines); i++ {
		m := keyLine.FindStringSubmatch(lines[i])
		if m == nil || !isContent(lines[i]) {
			continue
		}
		indent, key, rest := len(m[1]), m[2], m[3]
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		commented := i > 0 && strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#")
		next := i + 1
		for next < len(lines) && !isContent(lines[next]) {
			next++
		}
		isMap := rest == "" && next < len(lines) && indentOf(lines[next]) > indent &&
			!strings.HasPrefix(strings.TrimSpace(lines[next]), "- ")
		if isMap {
			stack = append(stack, parent{indent: indent, key: key, commented: commented})
			continue
		}
		documented := commented
		var path []string
		for depth, p := range stack {
			path = append(path, p.key)
			if depth > 0 && p.commented {
				documented = true
			}
		}
		if !documented {
			missing = append(missing, strings.Join(append(path, key), "."))
		}
		// Skip the body of a block value (a list or a literal).
		for next < len(lines) && (!isContent(lines[next]) || indentOf(lines[next]) > indent ||
			(indentOf(lines[next]) == indent && strings.HasPrefix(strings.TrimSpace(lines[next]), "- "))) {
			next++
		}
		i = next - 1
	}
	return missing
}

// TestUncommentedValues checks the comment rule itself on small inputs.
func TestUncommentedValues(t *testing.T) {
	cases := []struct {
		name string
		text string
		want string
	}{
		{"commented leaf", "# a\na: 1\n", ""},
		{"bare leaf", "a: 1\n", "a"},
		{"top-level comment does not cover children", "# s\ns:\n  a: 1\n", "s.a"},
		{"commented parent covers children", "s:\n  # r\n  r:\n    x:\n      cpu: 1\n", ""},
		{"list body skipped", "# l\nl:\n  - name: x\n    value: y\nb: 2\n", "b"},
		{"literal body skipped", "# c\nc: |\n  k: v\n# d\nd: 1\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(uncommentedValues(tc.text), ","); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

// onlyDeployment returns the single Deployment among objects.
func onlyDeployment(t *testing.T, objects []object) *appsv1.Deployment {
	t.Helper()
	var found []*appsv1.Deployment
	for _, o := range objects {
		if d, ok := o.Value.(*appsv1.Deployment); ok {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("got %d Deployments; want 1", len(found))
	}
	return found[0]
}

// containerNames lists a pod's container names for messages, init
// containers first and marked "init:".
func containerNames(spec *corev1.PodSpec) string {
	var names []string
	for _, c := range spec.InitContainers {
		names = append(names, "init:"+c.Name)
	}
	for _, c := range spec.Containers {
		names = append(names, c.Name)
	}
	return "[" + strings.Join(names, " ") + "]"
}

// readYAML decodes a YAML file into v.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// refusal is a change of values that the chart (helm template), or the Pod
// Security check of the pod it renders, must refuse, with a message
// holding want.
type refusal struct {
	name string
	args []string
	want string
}

// templateRefuses requires helm template with each case's args to fail
// with an error holding its want.
func templateRefuses(t *testing.T, cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := helm(t, append([]string{"template", "test", chartDir}, tc.args...)...)
			if err == nil {
				t.Fatalf("helm template %v succeeded; want it to fail with %q\n%s", tc.args, tc.want, out)
			}
			if !strings.Contains(string(errOut), tc.want) {
				t.Errorf("got error %s; want it to contain %q", errOut, tc.want)
			}
		})
	}
}

// policyRefuses renders the chart with base and each case's args, and
// requires the Pod Security "restricted" check of the Deployment's pod to
// name its want.
func policyRefuses(t *testing.T, base []string, cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, base...), tc.args...)
			deployment := onlyDeployment(t, decodeStrict(t, tc.name, render(t, chartDir, args...)))
			violations := strings.Join(restrictedViolations(t, &deployment.Spec.Template.ObjectMeta, &deployment.Spec.Template.Spec), "\n")
			if !strings.Contains(violations, tc.want) {
				t.Errorf("got violations %q; want one containing %q", violations, tc.want)
			}
		})
	}
}
