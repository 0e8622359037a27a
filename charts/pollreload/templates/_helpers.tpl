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
{{- if and .enabled (not .native) -}}
{{- include "pollreload.container" . -}}
{{- end -}}
{{- end -}}

{{/*
pollreload.nativeSidecar renders the pollreload container as a native
sidecar (Kubernetes 1.29 and later): an item of the pod's `initContainers`
with `restartPolicy: Always` and a startupProbe on /readyz, so that the
application's containers start only after pollreload has taken its first
scan, and pollreload stops only after them. It renders nothing unless the
sidecar is enabled and `native: true`. It takes the `sidecar` values block:

  initContainers:
    {{- include "pollreload.nativeSidecar" .Values.pollreload.sidecar | nindent 4 }}
  containers:
    - name: app
      ...
    {{- include "pollreload.sidecar" .Values.pollreload.sidecar | nindent 4 }}
*/}}
{{- define "pollreload.nativeSidecar" -}}
{{- if and .enabled .native -}}
{{- include "pollreload.container" . -}}
{{- end -}}
{{- end -}}

{{/*
pollreload.container renders the container of either form, as `native`
says; use "pollreload.sidecar" and "pollreload.nativeSidecar" instead.
*/}}
{{- define "pollreload.container" -}}
{{- if not .configDirs -}}
{{- fail "pollreload.sidecar: sidecar.configDirs is empty; list the mounted directories (or files) to poll" -}}
{{- end -}}
{{- if not (or .reloadUrl .processName .pidFile) -}}
{{- fail "pollreload.sidecar: set sidecar.processName or sidecar.pidFile (signal) or sidecar.reloadUrl (HTTP)" -}}
{{- end -}}
- name: {{ .name }}
  image: {{ if .image.digest }}{{ printf "%s@%s" .image.repository .image.digest | quote }}{{ else }}{{ printf "%s:%s" .image.repository .image.tag | quote }}{{ end }}
  imagePullPolicy: {{ .image.pullPolicy }}
  env:
    - name: CONFIG_DIR
      value: {{ join "," .configDirs | quote }}
    {{- if .reloadUrl }}
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
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if .native }}
  restartPolicy: Always
  {{- end }}
  {{- if .metrics.enabled }}
  ports:
    - name: {{ .metrics.portName }}
      containerPort: {{ int .metrics.port }}
      protocol: TCP
  {{- with .livenessProbe }}
  livenessProbe:
    {{- include "pollreload.probe" (dict "probe" . "port" $.metrics.portName) | nindent 4 }}
  {{- end }}
  {{- with .readinessProbe }}
  readinessProbe:
    {{- include "pollreload.probe" (dict "probe" . "port" $.metrics.portName) | nindent 4 }}
  {{- end }}
  {{- if .native }}
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
the sidecar is enabled and reloads by signal: only then must it see the
application's processes. It takes the same `sidecar` values block:

  spec:
    {{- include "pollreload.shareProcessNamespace" .Values.pollreload.sidecar | nindent 2 }}
*/}}
{{- define "pollreload.shareProcessNamespace" -}}
{{- if and .enabled (not .reloadUrl) -}}
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
