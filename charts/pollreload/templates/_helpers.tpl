{{/*
pollreload.sidecar renders the pollreload container as one item of a pod's
`containers` list, or nothing when the sidecar is disabled. Its argument is
the `sidecar` values block; a chart that depends on this one passes its copy:

  containers:
    - name: app
      ...
    {{- include "pollreload.sidecar" .Values.pollreload.sidecar | nindent 4 }}

It takes the values block rather than the root context because a parent
chart's `$.Chart` is the parent's, not this chart's.
*/}}
{{- define "pollreload.sidecar" -}}
{{- if .enabled -}}
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
    {{- with .extraEnv }}
    {{- toYaml . | nindent 4 }}
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
