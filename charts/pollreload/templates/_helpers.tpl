{{/*
pollreload.sidecar renders the pollreload container as one item of a pod's
`containers` list, or nothing when the sidecar is disabled or runs as a
native sidecar (`native: true`). Its argument is the `sidecar` values block;
a chart that depends on this one passes its copy:

  containers:
    - name: app
      ...
    {{- include "pollreload.sidecar" .Values.pollreload.sidecar | nindent 4 }}

It takes the values block rather than the root context because a parent
chart's `$.Chart` is the parent's, not this chart's.

Include "pollreload.nativeSidecar" in the pod's `initContainers` as well, so
that `sidecar.native` picks the form: each of the two renders nothing in the
other's case. Pods that include these helpers should also set
`enableServiceLinks: false`: Kubernetes otherwise injects `<SERVICE>_PORT`
and friends for every Service in the namespace into every container.
*/}}
{{- define "pollreload.sidecar" -}}
{{- if and .enabled (eq (include "pollreload.mode" .) "sidecar") -}}
{{- include "pollreload.container" . -}}
{{- end -}}
{{- end -}}

{{/*
pollreload.nativeSidecar renders the pollreload container as a native
sidecar (Kubernetes 1.29 and later): an item of the pod's `initContainers`
with `restartPolicy: Always` and a startupProbe on /readyz, so that the
application's containers start only after pollreload has taken its first
scan, and pollreload stops only after them. It renders nothing unless the
sidecar is enabled and `mode: native` (or `native: true`). It takes the
`sidecar` values block:

  initContainers:
    {{- include "pollreload.nativeSidecar" .Values.pollreload.sidecar | nindent 4 }}
  containers:
    - name: app
      ...
    {{- include "pollreload.sidecar" .Values.pollreload.sidecar | nindent 4 }}
*/}}
{{- define "pollreload.nativeSidecar" -}}
{{- if and .enabled (eq (include "pollreload.mode" .) "native") -}}
{{- include "pollreload.container" . -}}
{{- end -}}
{{- end -}}

{{/*
pollreload.mode is the form pollreload takes, from `mode`: sidecar, native
or wrapper; `native: true`, the older way to ask for a native sidecar, means
native.
*/}}
{{- define "pollreload.mode" -}}
{{- $mode := .mode | default "sidecar" -}}
{{- if and .native (eq $mode "wrapper") -}}
{{- fail "sidecar.native is true and sidecar.mode is wrapper: choose one (sidecar.mode: native replaces sidecar.native: true)" -}}
{{- end -}}
{{- if .native }}native{{ else }}{{ $mode }}{{ end -}}
{{- end -}}

{{/*
pollreload.container renders the container of either sidecar form, as
`mode` says; use "pollreload.sidecar" and "pollreload.nativeSidecar" instead.
*/}}
{{- define "pollreload.container" -}}
{{- $native := eq (include "pollreload.mode" .) "native" -}}
{{- if not (or .reloadUrl .processName .pidFile) -}}
{{- fail "pollreload.sidecar: set sidecar.processName or sidecar.pidFile (signal) or sidecar.reloadUrl (HTTP)" -}}
{{- end -}}
- name: {{ .name }}
  image: {{ include "pollreload.image" . }}
  imagePullPolicy: {{ .image.pullPolicy }}
  env:
    {{- include "pollreload.env" . | nindent 4 }}
  {{- if $native }}
  restartPolicy: Always
  {{- end }}
  {{- if .metrics.enabled }}
  ports:
    {{- include "pollreload.metricsPort" . | nindent 4 }}
  {{- include "pollreload.probes" . | nindent 2 }}
  {{- if $native }}
  {{- with .startupProbe }}
  startupProbe:
    {{- include "pollreload.probe" (dict "probe" . "port" $.metrics.portName) | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- end }}
  {{- with .resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .volumeMounts }}
  volumeMounts:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* pollreload.image is the image reference, by digest when one is set. */}}
{{- define "pollreload.image" -}}
{{- if .image.digest }}{{ printf "%s@%s" .image.repository .image.digest | quote }}{{ else }}{{ printf "%s:%s" .image.repository .image.tag | quote }}{{ end -}}
{{- end -}}

{{/*
pollreload.env renders pollreload's environment as `env` items, for every
form: in wrapper mode without a target (the child is the target) and with
GOMEMLIMIT from the limit of the application's container, which pollreload
runs in.
*/}}
{{- define "pollreload.env" -}}
{{- if not .configDirs -}}
{{- fail "pollreload.sidecar: sidecar.configDirs is empty; list the mounted directories (or files) to poll" -}}
{{- end -}}
{{- $wrapper := eq (include "pollreload.mode" .) "wrapper" -}}
- name: CONFIG_DIR
  value: {{ join "," .configDirs | quote }}
{{- if $wrapper }}
- name: RELOAD_SIGNAL
  value: {{ .reloadSignal | quote }}
{{- else if .reloadUrl }}
- name: RELOAD_URL
  value: {{ .reloadUrl | quote }}
- name: RELOAD_METHOD
  value: {{ .reloadMethod | quote }}
{{- else }}
{{- with .processName }}
- name: PROCESS_NAME
  value: {{ . | quote }}
{{- end }}
{{- with .pidFile }}
- name: PID_FILE
  value: {{ . | quote }}
{{- end }}
- name: RELOAD_SIGNAL
  value: {{ .reloadSignal | quote }}
{{- end }}
- name: POLL_INTERVAL
  value: {{ .pollInterval | quote }}
- name: METRICS_ADDR
  value: {{ if .metrics.enabled }}{{ printf ":%d" (int .metrics.port) | quote }}{{ else }}""{{ end }}
- name: LOG_FORMAT
  value: {{ .logFormat | quote }}
- name: LOG_LEVEL
  value: {{ .logLevel | quote }}
{{- if .goMemLimit }}
# The Go runtime's soft memory limit, from the container's own limit;
# divisor 1 gives bytes, which GOMEMLIMIT reads as such.
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
      divisor: "1"
{{- end }}
{{- with .extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* pollreload.metricsPort renders the metrics port as a `ports` item. */}}
{{- define "pollreload.metricsPort" -}}
- name: {{ .metrics.portName }}
  containerPort: {{ int .metrics.port }}
  protocol: TCP
{{- end -}}

{{/* pollreload.probes renders the liveness and readiness probes. */}}
{{- define "pollreload.probes" -}}
{{- with .livenessProbe }}
livenessProbe:
  {{- include "pollreload.probe" (dict "probe" . "port" $.metrics.portName) | nindent 2 }}
{{- end }}
{{- with .readinessProbe }}
readinessProbe:
  {{- include "pollreload.probe" (dict "probe" . "port" $.metrics.portName) | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Wrapper mode (`mode: wrapper`): no container of pollreload's own. An init
container from pollreload's image copies the static binary into an emptyDir
(`pollreload copy`, which runs the copy with --version, so a copy that
cannot run fails the pod at its init container), and the application's
container runs `<wrapper.binDir>/pollreload -- <wrapper.command>`:
pollreload is its PID 1, starts the application as its child, reloads it
by signal, and serves metrics and probes on the application container's
ports. No PID namespace is shared and no UID must match: the application
and pollreload are one process tree, run as the UID the image chooses.

Each template below renders nothing unless the sidecar is enabled and
`mode: wrapper`, so a chart includes them all and `mode` picks the form.
They take the `sidecar` values block:

  spec:
    initContainers:
      {{- include "pollreload.copyInit" .Values.pollreload.sidecar | nindent 6 }}
    containers:
      - name: app
        image: ...
        {{- include "pollreload.wrapperCommand" .Values.pollreload.sidecar | nindent 8 }}
        env:
          {{- include "pollreload.wrapperEnv" .Values.pollreload.sidecar | nindent 10 }}
        ports:
          - name: http
            containerPort: 8080
          {{- include "pollreload.wrapperPorts" .Values.pollreload.sidecar | nindent 10 }}
        {{- include "pollreload.wrapperProbes" .Values.pollreload.sidecar | nindent 8 }}
        volumeMounts:
          - ...
          {{- include "pollreload.wrapperVolumeMount" .Values.pollreload.sidecar | nindent 10 }}
    volumes:
      - ...
      {{- include "pollreload.wrapperVolume" .Values.pollreload.sidecar | nindent 6 }}

The application's container keeps its own securityContext: pollreload
needs nothing from it (no capability, any UID, a read-only root).
*/}}
{{- define "pollreload.wrapping" -}}
{{- if and .enabled (eq (include "pollreload.mode" .) "wrapper") }}true{{ end -}}
{{- end -}}

{{/* pollreload.copyInit renders the init container that copies pollreload. */}}
{{- define "pollreload.copyInit" -}}
{{- if include "pollreload.wrapping" . -}}
- name: {{ .name }}
  image: {{ include "pollreload.image" . }}
  imagePullPolicy: {{ .image.pullPolicy }}
  args: [copy, {{ .wrapper.binDir | quote }}]
  {{- with .resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: {{ .wrapper.volumeName }}
      mountPath: {{ .wrapper.binDir | quote }}
{{- end -}}
{{- end -}}

{{/*
pollreload.wrapperCommand renders the application container's `command`
(pollreload, then the application's own command) and `args`.
*/}}
{{- define "pollreload.wrapperCommand" -}}
{{- if include "pollreload.wrapping" . -}}
{{- if not .wrapper.command -}}
{{- fail "sidecar.mode is wrapper but sidecar.wrapper.command is empty: give the application's command (its image's entrypoint, which a chart cannot read), e.g. [nginx, -g, daemon off;]" -}}
{{- end -}}
command:
  - {{ printf "%s/pollreload" (trimSuffix "/" .wrapper.binDir) | quote }}
  - "--"
  {{- range .wrapper.command }}
  - {{ . | quote }}
  {{- end }}
{{- with .wrapper.args }}
args:
  {{- range . }}
  - {{ . | quote }}
  {{- end }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* pollreload.wrapperEnv renders pollreload's `env` items. */}}
{{- define "pollreload.wrapperEnv" -}}
{{- if include "pollreload.wrapping" . -}}
{{- if .reloadUrl -}}
{{- fail "sidecar.mode is wrapper and sidecar.reloadUrl is set: a wrapper reloads its child by signal (sidecar.reloadSignal); unset reloadUrl or use mode sidecar" -}}
{{- end -}}
{{- include "pollreload.env" . -}}
{{- end -}}
{{- end -}}

{{/* pollreload.wrapperPorts renders the metrics port as a `ports` item. */}}
{{- define "pollreload.wrapperPorts" -}}
{{- if and (include "pollreload.wrapping" .) .metrics.enabled -}}
{{- include "pollreload.metricsPort" . -}}
{{- end -}}
{{- end -}}

{{/*
pollreload.wrapperProbes renders the liveness (/healthz) and readiness
(/readyz) probes on the metrics port, for the application's container.
*/}}
{{- define "pollreload.wrapperProbes" -}}
{{- if and (include "pollreload.wrapping" .) .metrics.enabled -}}
{{- include "pollreload.probes" . -}}
{{- end -}}
{{- end -}}

{{/* pollreload.wrapperVolumeMount mounts the copy, read-only. */}}
{{- define "pollreload.wrapperVolumeMount" -}}
{{- if include "pollreload.wrapping" . -}}
- name: {{ .wrapper.volumeName }}
  mountPath: {{ .wrapper.binDir | quote }}
  readOnly: true
{{- end -}}
{{- end -}}

{{/* pollreload.wrapperVolume renders the emptyDir the copy lives in. */}}
{{- define "pollreload.wrapperVolume" -}}
{{- if include "pollreload.wrapping" . -}}
- name: {{ .wrapper.volumeName }}
  emptyDir:
    sizeLimit: {{ .wrapper.sizeLimit }}
{{- end -}}
{{- end -}}

{{/*
pollreload.probe renders a probe whose httpGet has no port as one on the
metrics port, so renaming that port does not break the probes.
*/}}
{{- define "pollreload.probe" -}}
{{- $probe := deepCopy .probe -}}
{{- if and $probe.httpGet (not $probe.httpGet.port) -}}
{{- $_ := set $probe.httpGet "port" .port -}}
{{- end -}}
{{- toYaml $probe -}}
{{- end -}}

{{/*
pollreload.shareProcessNamespace renders `shareProcessNamespace: true` when
the sidecar is enabled, reloads by signal and is a container of its own
(not in wrapper mode): only then must it see the application's processes. It takes the same `sidecar` values block:

  spec:
    {{- include "pollreload.shareProcessNamespace" .Values.pollreload.sidecar | nindent 2 }}
*/}}
{{- define "pollreload.shareProcessNamespace" -}}
{{- if and .enabled (not .reloadUrl) (ne (include "pollreload.mode" .) "wrapper") -}}
shareProcessNamespace: true
{{- end -}}
{{- end -}}

{{/*
pollreload.podMonitor renders a Prometheus Operator PodMonitor that scrapes
the sidecar's metrics port, when `podMonitor.enabled`; nothing otherwise.
Its argument is a dict:

  name            the object's name
  selectorLabels  labels of the pods to scrape (those of the pod template)
  labels          more labels for the object (optional)
  values          this chart's values: .Values.pollreload in a parent chart,
                  read for `sidecar` and `podMonitor`

  {{- include "pollreload.podMonitor" (dict "name" (printf "%s-app" .Release.Name)
        "selectorLabels" (dict "app" "my-app") "values" .Values.pollreload) }}
*/}}
{{- define "pollreload.podMonitor" -}}
{{- $v := .values -}}
{{- if $v.podMonitor.enabled -}}
{{- if not (and $v.sidecar.enabled $v.sidecar.metrics.enabled) -}}
{{- fail "podMonitor.enabled needs sidecar.enabled and sidecar.metrics.enabled: there is nothing to scrape" -}}
{{- end -}}
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  name: {{ .name }}
  {{- $labels := merge (dict) ($v.podMonitor.labels | default dict) (.labels | default dict) }}
  {{- with $labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  selector:
    matchLabels:
      {{- toYaml .selectorLabels | nindent 6 }}
  podMetricsEndpoints:
    - port: {{ $v.sidecar.metrics.portName }}
      path: /metrics
      {{- with $v.podMonitor.interval }}
      interval: {{ . }}
      {{- end }}
{{- end -}}
{{- end -}}

{{/*
pollreload.serviceMonitor renders a Prometheus Operator ServiceMonitor that
scrapes the sidecar through a Service's metrics port, when
`serviceMonitor.enabled`; nothing otherwise. It takes the same dict as
"pollreload.podMonitor", with selectorLabels matching the Service's own
labels. The Service needs the port "pollreload.metricsServicePort" renders.
*/}}
{{- define "pollreload.serviceMonitor" -}}
{{- $v := .values -}}
{{- if $v.serviceMonitor.enabled -}}
{{- if not (and $v.sidecar.enabled $v.sidecar.metrics.enabled) -}}
{{- fail "serviceMonitor.enabled needs sidecar.enabled and sidecar.metrics.enabled: there is nothing to scrape" -}}
{{- end -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ .name }}
  {{- $labels := merge (dict) ($v.serviceMonitor.labels | default dict) (.labels | default dict) }}
  {{- with $labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  selector:
    matchLabels:
      {{- toYaml .selectorLabels | nindent 6 }}
  endpoints:
    - port: {{ $v.sidecar.metrics.portName }}
      path: /metrics
      {{- with $v.serviceMonitor.interval }}
      interval: {{ . }}
      {{- end }}
{{- end -}}
{{- end -}}

{{/*
pollreload.metricsServicePort renders the Service port item that
"pollreload.serviceMonitor" scrapes, when serviceMonitor.enabled and the
sidecar serves metrics; nothing otherwise. Its argument is this chart's
values (.Values.pollreload in a parent chart):

  ports:
    - name: http
      ...
    {{- include "pollreload.metricsServicePort" .Values.pollreload | nindent 4 }}
*/}}
{{- define "pollreload.metricsServicePort" -}}
{{- if and .serviceMonitor.enabled .sidecar.enabled .sidecar.metrics.enabled -}}
- name: {{ .sidecar.metrics.portName }}
  port: {{ int .sidecar.metrics.port }}
  targetPort: {{ .sidecar.metrics.portName }}
  protocol: TCP
{{- end -}}
{{- end -}}

{{/* pollreload.name is the chart name, or nameOverride. */}}
{{- define "pollreload.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
pollreload.fullname is "<release>-<chart>" cut to the 63 characters a DNS
label allows, or fullnameOverride; the release name alone if it already
contains the chart name.
*/}}
{{- define "pollreload.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* pollreload.selectorLabels are the labels that select the example's pods. */}}
{{- define "pollreload.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pollreload.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* pollreload.labels go on every object the chart renders. */}}
{{- define "pollreload.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pollreload.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
