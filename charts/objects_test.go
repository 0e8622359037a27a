package charts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// object is one decoded manifest.
type object struct {
	Kind  string
	Name  string
	Value any // a pointer to the k8s.io/api or monitoring/v1 type
}

// newTyped returns a pointer to the Go type of apiVersion and kind, or nil
// for a kind the tests do not know (which fails the test: nothing renders
// unchecked).
func newTyped(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1 Pod":
		return &corev1.Pod{}
	case "v1 PersistentVolume":
		return &corev1.PersistentVolume{}
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}
	case "batch/v1 Job":
		return &batchv1.Job{}
	case "monitoring.coreos.com/v1 PodMonitor":
		return &monitoringv1.PodMonitor{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}
	case "monitoring.coreos.com/v1 PrometheusRule":
		return &monitoringv1.PrometheusRule{}
	}
	return nil
}

// decodeStrict splits a multi-document YAML stream and decodes each document
// into its Go type, rejecting unknown and duplicate fields. Errors are
// reported on t with source as context.
func decodeStrict(t *testing.T, source string, data []byte) []object {
	t.Helper()
	var objects []object
	reader := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects
		}
		if err != nil {
			t.Fatalf("%s: read document %d: %v", source, i, err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Errorf("%s: document %d: %v", source, i, err)
			continue
		}
		if meta.APIVersion == "" && meta.Kind == "" {
			var anything any
			if err := yaml.Unmarshal(doc, &anything); err == nil && anything == nil {
				continue // only comments or whitespace
			}
			t.Errorf("%s: document %d has no apiVersion and kind", source, i)
			continue
		}
		typed := newTyped(meta.APIVersion, meta.Kind)
		if typed == nil {
			t.Errorf("%s: document %d: no Go type known for %s %s", source, i, meta.APIVersion, meta.Kind)
			continue
		}
		if err := yaml.UnmarshalStrict(doc, typed); err != nil {
			t.Errorf("%s: %s (document %d) does not decode strictly: %v", source, meta.Kind, i, err)
			continue
		}
		name := ""
		if m, ok := typed.(metav1.Object); ok {
			name = m.GetName()
		}
		objects = append(objects, object{Kind: meta.Kind, Name: name, Value: typed})
	}
}

// podSpecOf returns the pod metadata and spec inside a workload object.
func podSpecOf(value any) (*metav1.ObjectMeta, *corev1.PodSpec, bool) {
	switch o := value.(type) {
	case *corev1.Pod:
		return &o.ObjectMeta, &o.Spec, true
	case *appsv1.Deployment:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true
	case *appsv1.StatefulSet:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true
	case *appsv1.DaemonSet:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true
	case *batchv1.Job:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true
	}
	return nil, nil, false
}

// restrictedViolations evaluates a pod against the latest "restricted" Pod
// Security level with the checks the admission controller itself runs, and
// returns one line per failed check.
func restrictedViolations(t *testing.T, meta *metav1.ObjectMeta, spec *corev1.PodSpec) []string {
	t.Helper()
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks())
	if err != nil {
		t.Fatalf("pod security evaluator: %v", err)
	}
	level := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	var violations []string
	for _, result := range evaluator.EvaluatePod(level, meta, spec) {
		if !result.Allowed {
			violations = append(violations, result.ForbiddenReason+": "+result.ForbiddenDetail)
		}
	}
	return violations
}

// isDaemonEnv reports whether pollreload reads the variable name (the
// README's table); a sidecar setting any other has a typo the daemon rejects
// or ignores.
func isDaemonEnv(name string) bool {
	switch name {
	case "CONFIG_DIR", "PROCESS_NAME", "PID_FILE", "RELOAD_SIGNAL", "RELOAD_TARGETS",
		"RELOAD_FORCE", "RELOAD_URL", "RELOAD_METHOD", "RELOAD_TIMEOUT", "RELOAD_ON_START",
		"RELOAD_VERIFY_URL", "RELOAD_VERIFY_METRIC", "RELOAD_VERIFY", "RELOAD_VERIFY_COMMAND",
		"RELOAD_VERIFY_SHELL", "RELOAD_VERIFY_LOG", "RELOAD_VERIFY_LOG_SUCCESS", "RELOAD_VERIFY_LOG_FAILURE",
		"RELOAD_CHECK_COMMAND", "RELOAD_CHECK_SHELL", "RELOAD_CHECK_TIMEOUT",
		"RELOAD_APP", "RELOAD_APP_STATUS", "RELOAD_APP_DSN_FILE",
		"RELOAD_BEARER_TOKEN_FILE", "RELOAD_BASIC_AUTH_USERNAME", "RELOAD_BASIC_AUTH_PASSWORD_FILE",
		"RELOAD_CA_FILE", "RELOAD_CERT_FILE", "RELOAD_KEY_FILE", "RELOAD_HEADERS",
		"POLL_INTERVAL", "SETTLE_TIME", "METRICS_ADDR", "LOG_FORMAT", "LOG_LEVEL", "VERBOSE",
		"MAX_FILES", "MAX_FILE_SIZE", "MAX_DEPTH", "MAX_TOTAL_SIZE", "INCLUDE", "EXCLUDE",
		"VERIFY_INTERVAL", "HEALTH_MISSED_SCANS",
		"GOMEMLIMIT": // read by the Go runtime
		return true
	}
	return false
}

// sidecarOf returns the pollreload container of a pod: the one whose
// environment sets CONFIG_DIR, among the containers or, for a native
// sidecar, the init containers.
func sidecarOf(spec *corev1.PodSpec) *corev1.Container {
	for _, list := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for i := range list {
			if _, ok := envOf(&list[i])["CONFIG_DIR"]; ok {
				return &list[i]
			}
		}
	}
	return nil
}

// isNative reports whether c is one of spec's init containers: a native
// sidecar, if it is pollreload.
func isNative(spec *corev1.PodSpec, c *corev1.Container) bool {
	for i := range spec.InitContainers {
		if &spec.InitContainers[i] == c {
			return true
		}
	}
	return false
}

// allContainers returns a pod's init containers and containers.
func allContainers(spec *corev1.PodSpec) []corev1.Container {
	return append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
}

// envOf returns a container's literal environment by name.
func envOf(c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// resolvedEnv is envOf with every resourceFieldRef resolved as the kubelet
// resolves it: the container's own limit or request, divided by the divisor
// (1 when unset) and rounded up.
func resolvedEnv(t *testing.T, c *corev1.Container) map[string]string {
	t.Helper()
	env := envOf(c)
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil {
			continue
		}
		ref := e.ValueFrom.ResourceFieldRef
		kind, name, _ := strings.Cut(ref.Resource, ".")
		list := c.Resources.Limits
		if kind == "requests" {
			list = c.Resources.Requests
		}
		q, ok := list[corev1.ResourceName(name)]
		if !ok {
			t.Fatalf("container %s: %s from %s, which the container does not set (the kubelet would use the node's allocatable)", c.Name, e.Name, ref.Resource)
		}
		divisor := ref.Divisor
		if divisor.IsZero() {
			divisor = resource.MustParse("1")
		}
		value, unit := q.Value(), divisor.Value()
		if name == "cpu" {
			value, unit = q.MilliValue(), divisor.MilliValue()
		}
		env[e.Name] = strconv.FormatInt((value+unit-1)/unit, 10)
	}
	return env
}

// effectiveUID is the UID a container runs as per its pod spec, or -1 when
// the spec leaves it to the image.
func effectiveUID(spec *corev1.PodSpec, c *corev1.Container) int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return *c.SecurityContext.RunAsUser
	}
	if spec.SecurityContext != nil && spec.SecurityContext.RunAsUser != nil {
		return *spec.SecurityContext.RunAsUser
	}
	return -1
}

// wiringProblems finds references inside a pod spec that point nowhere, and
// a pollreload sidecar that could not work where it is: mounts of undeclared
// volumes, probes on undeclared ports, a watched directory the sidecar does
// not mount (or mounts by subPath, which never updates), and signal mode
// without a shared PID namespace or with a UID other than the app's.
func wiringProblems(spec *corev1.PodSpec) []string {
	var problems []string
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
	}
	podPorts := map[string]bool{}
	for _, c := range allContainers(spec) {
		ports := map[string]bool{}
		for _, p := range c.Ports {
			if p.Name == "" {
				continue
			}
			if podPorts[p.Name] {
				problems = append(problems, fmt.Sprintf("container %s: port name %q used twice in the pod", c.Name, p.Name))
			}
			ports[p.Name], podPorts[p.Name] = true, true
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				problems = append(problems, fmt.Sprintf("container %s mounts undeclared volume %q", c.Name, m.Name))
			}
		}
		for kind, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
			if probe == nil || probe.HTTPGet == nil {
				continue
			}
			if port := probe.HTTPGet.Port; port.Type == intstr.String && !ports[port.StrVal] {
				problems = append(problems, fmt.Sprintf("container %s: %s probe uses undeclared port %q", c.Name, kind, port.StrVal))
			}
		}
	}

	sidecar := sidecarOf(spec)
	if sidecar == nil {
		return problems
	}
	env := envOf(sidecar)
	for name := range env {
		if !isDaemonEnv(name) {
			problems = append(problems, fmt.Sprintf("sidecar %s sets %s, which pollreload does not read", sidecar.Name, name))
		}
	}
	if isNative(spec, sidecar) {
		// An init container without restartPolicy Always must exit before
		// the application starts; pollreload never does.
		if sidecar.RestartPolicy == nil || *sidecar.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			problems = append(problems, fmt.Sprintf("sidecar %s is an init container without restartPolicy Always: the pod would never start", sidecar.Name))
		}
		if env["METRICS_ADDR"] != "" && (sidecar.StartupProbe == nil || sidecar.StartupProbe.HTTPGet == nil || sidecar.StartupProbe.HTTPGet.Path != "/readyz") {
			problems = append(problems, fmt.Sprintf("native sidecar %s has no startupProbe on /readyz: the application could start before the first scan", sidecar.Name))
		}
	}
	for _, dir := range strings.Split(env["CONFIG_DIR"], ",") {
		if !mountedWhole(sidecar, dir) {
			problems = append(problems, fmt.Sprintf("sidecar %s watches %s but mounts no whole volume there (a subPath mount never updates)", sidecar.Name, dir))
		}
	}
	if argv := wrappedCommand(sidecar); argv != nil {
		return append(problems, wrapperProblems(spec, sidecar, argv)...)
	}
	if env["RELOAD_URL"] != "" {
		return problems
	}
	if spec.ShareProcessNamespace == nil || !*spec.ShareProcessNamespace {
		problems = append(problems, fmt.Sprintf("sidecar %s signals processes but the pod does not set shareProcessNamespace", sidecar.Name))
	}
	uid := effectiveUID(spec, sidecar)
	sameUID := false
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if c.Name != sidecar.Name && uid >= 0 && effectiveUID(spec, c) == uid {
			sameUID = true
		}
	}
	if !sameUID {
		problems = append(problems, fmt.Sprintf("sidecar %s runs as UID %d, which no other container runs as: its signals would fail with EPERM", sidecar.Name, uid))
	}
	return problems
}

// wrappedCommand returns the command of a container that runs pollreload
// as its init (`<dir>/pollreload -- CMD...`), or nil.
func wrappedCommand(c *corev1.Container) []string {
	if len(c.Command) >= 3 && path.Base(c.Command[0]) == "pollreload" && c.Command[1] == "--" {
		return c.Command
	}
	return nil
}

// wrapperProblems finds what would leave a wrapped application without its
// pollreload, or running without reloads while it looks healthy: the binary
// on no emptyDir, no init container that copies it there, the copy mounted
// writable, probes that are not pollreload's, and a shared PID namespace
// nobody needs.
func wrapperProblems(spec *corev1.PodSpec, app *corev1.Container, argv []string) []string {
	var problems []string
	dir := path.Dir(argv[0])
	var mount *corev1.VolumeMount
	for i := range app.VolumeMounts {
		if path.Clean(app.VolumeMounts[i].MountPath) == dir {
			mount = &app.VolumeMounts[i]
		}
	}
	if mount == nil {
		return append(problems, fmt.Sprintf("container %s runs %s, but mounts no volume at %s", app.Name, argv[0], dir))
	}
	if !mount.ReadOnly {
		problems = append(problems, fmt.Sprintf("container %s mounts the copy of pollreload writable: the application could replace it", app.Name))
	}
	emptyDir := false
	for _, v := range spec.Volumes {
		if v.Name == mount.Name && v.EmptyDir != nil {
			emptyDir = true
		}
	}
	if !emptyDir {
		problems = append(problems, fmt.Sprintf("container %s: volume %q holding pollreload is not an emptyDir", app.Name, mount.Name))
	}
	copied := false
	for _, c := range spec.InitContainers {
		if c.RestartPolicy != nil || len(c.Args) != 2 || c.Args[0] != "copy" || path.Clean(c.Args[1]) == "" {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == mount.Name && !m.ReadOnly && path.Clean(m.MountPath) == path.Clean(c.Args[1]) {
				copied = true
			}
		}
	}
	if !copied {
		problems = append(problems, fmt.Sprintf("container %s runs %s, but no init container runs `pollreload copy` into volume %q", app.Name, argv[0], mount.Name))
	}
	env := envOf(app)
	if env["METRICS_ADDR"] != "" {
		for kind, probe := range map[string]*corev1.Probe{"liveness": app.LivenessProbe, "readiness": app.ReadinessProbe} {
			want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[kind]
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want {
				problems = append(problems, fmt.Sprintf("container %s is wrapped by pollreload but has no %s probe on %s", app.Name, kind, want))
			}
		}
	}
	for _, name := range []string{"PROCESS_NAME", "PID_FILE", "RELOAD_URL"} {
		if _, ok := env[name]; ok {
			problems = append(problems, fmt.Sprintf("container %s is wrapped by pollreload but sets %s, which wrapper mode refuses", app.Name, name))
		}
	}
	if spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace {
		problems = append(problems, "the pod shares its PID namespace, which wrapper mode does not need")
	}
	return problems
}

// mountedWhole reports whether dir lies inside a mount of c that is not a
// subPath mount.
func mountedWhole(c *corev1.Container, dir string) bool {
	dir = path.Clean(dir)
	for _, m := range c.VolumeMounts {
		mp := path.Clean(m.MountPath)
		if (dir == mp || strings.HasPrefix(dir, mp+"/")) && m.SubPath == "" && m.SubPathExpr == "" {
			return true
		}
	}
	return false
}

// checkObjects runs the pod checks on every workload in objects and returns
// how many pod specs passed "restricted".
func checkObjects(t *testing.T, source string, objects []object) int {
	t.Helper()
	pods := 0
	for _, o := range objects {
		meta, spec, ok := podSpecOf(o.Value)
		if !ok {
			continue
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: %s %s: automountServiceAccountToken is not false", source, o.Kind, o.Name)
		}
		if v := restrictedViolations(t, meta, spec); len(v) > 0 {
			t.Errorf("%s: %s %s violates Pod Security \"restricted\":\n  %s", source, o.Kind, o.Name, strings.Join(v, "\n  "))
		} else {
			pods++
		}
		for _, p := range wiringProblems(spec) {
			t.Errorf("%s: %s %s: %s", source, o.Kind, o.Name, p)
		}
	}
	return pods
}
