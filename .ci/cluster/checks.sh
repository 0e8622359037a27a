# shellcheck shell=bash
# .ci/cluster/checks.sh: what the scenarios check with: kubectl (k), HTTP
# and metrics from outside the pod, waits for Ready and served content, the
# sidecar pod, the reload check, and `scenario`, which runs one scenario and
# prints its `cluster:` line. Sourced by .ci/cluster.sh.

# --------------------------------------------------------------- scenarios
k() { "$kubectl" "$@"; }
http_get() { curl -s --noproxy '*' -m 2 "$@"; }
# metric POD_IP SERIES prints the value of SERIES on the sidecar's /metrics.
metric() {
	http_get "http://$1:9533/metrics" | awk -v s="$2" '$1 == s { print $2 }'
}

# metric_sum IP PREFIX sums the samples whose series starts with PREFIX, such
# as 'pollreload_reloads_total{result="success"' (more labels, such as target,
# may follow), and prints nothing when there is none.
metric_sum() {
	http_get "http://$1:9533/metrics" | awk -v p="$2" 'index($1, p) == 1 { s += $2; n++ } END { if (n) print s }'
}

# verified_successes IP prints the sidecar's success count once it reads 1,
# or what it reads after 10 s: a reload counts as a success only once it is
# verified (the target still alive after a grace, or the app's own answer),
# a moment after the app already serves the new content.
verified_successes() {
	local v i
	for ((i = 0; i < 50; i++)); do
		v=$(metric_sum "$1" 'pollreload_reloads_total{result="success"')
		[[ $v == 1 ]] && break
		sleep 0.2
	done
	echo "$v"
}

# restricted_ns NAME creates a namespace that enforces Pod Security
# "restricted" and waits for its default ServiceAccount.
restricted_ns() {
	k create namespace "$1" >/dev/null
	k label namespace "$1" pod-security.kubernetes.io/enforce=restricted \
		pod-security.kubernetes.io/enforce-version=latest >/dev/null
	wait_for "ServiceAccount default in $1" 30 k get serviceaccount default -n "$1"
}

# container_log NS POD CONTAINER prints the container's log as the kubelet
# wrote it, the previous run's too (kubectl logs --previous cannot always
# find that run once the kubelet has removed it).
container_log() {
	local uid
	uid=$(k get pod -n "$1" "$2" -o jsonpath='{.metadata.uid}')
	cat "$state/pod-logs/${1}_${2}_$uid/$3"/*.log 2>/dev/null | sed -E 's/^[^ ]+ (stdout|stderr) [FP] //'
}

# wait_ready NS POD SECONDS waits until the pod is Ready. It gives up early
# when a container restarts (a crash loop) and prints that container's log.
wait_ready() {
	local ns=$1 pod=$2 secs=$3 i st
	for ((i = 0; i < secs * 5; i++)); do
		[[ $(k get pod -n "$ns" "$pod" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] && return 0
		st=$(k get pod -n "$ns" "$pod" -o jsonpath='{range .status.initContainerStatuses[*]}{.name} {.restartCount}{"\n"}{end}{range .status.containerStatuses[*]}{.name} {.restartCount}{"\n"}{end}' 2>/dev/null)
		while read -r c n; do
			if [[ -n $c ]] && ((n > 0)); then
				echo "container $c of pod $ns/$pod restarted $n times ($(k get pod -n "$ns" "$pod" -o jsonpath="{range .status.containerStatuses[?(@.name==\"$c\")]}{.lastState.terminated.reason}, exit code {.lastState.terminated.exitCode}{end}")); its log: $(container_log "$ns" "$pod" "$c" | tail -n 3 | tr '\n' ' ')"
				return 1
			fi
		done <<<"$st"
		sleep 0.2
	done
	echo "pod $ns/$pod not Ready within $secs s: $(k get pod -n "$ns" "$pod" -o jsonpath='{.status.phase}; {range .status.conditions[*]}{.type}={.status} {.message}; {end}{range .status.containerStatuses[*]}{.name}: ready={.ready} {.state}; {end}' 2>&1) events: $(k get events -n "$ns" --field-selector "involvedObject.name=$pod" -o jsonpath='{range .items[*]}{.reason}: {.message}; {end}' 2>&1 | tail -c 400)"
	return 1
}

# wait_served URL TEXT SECONDS waits until URL answers with TEXT in its body.
wait_served() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		[[ $(http_get "$1") == *"$2"* ]] && return 0
		sleep 0.05
	done
	return 1
}

# sidecar_pod NAME VOLUME SHARE_PID SIDECAR_UID prints a pod of nginx and the
# pollreload sidecar; VOLUME is "configMap: {name: X}" or "secret: {secretName: X}".
sidecar_pod() {
	cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
spec:
  shareProcessNamespace: $3
  enableServiceLinks: false
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: nginx
      image: $nginx_image
      imagePullPolicy: Never
      ports: [{name: http, containerPort: 8080}]
      readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
      securityContext:
        runAsUser: 101
        runAsGroup: 101
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
      volumeMounts:
        - {name: conf, mountPath: /etc/nginx/conf.d, readOnly: true}
        - {name: tmp, mountPath: /tmp}
    - name: pollreload
      image: $pollreload_image
      imagePullPolicy: Never
      env:
        - {name: CONFIG_DIR, value: /etc/nginx/conf.d}
        - {name: PROCESS_NAME, value: nginx}
        - {name: RELOAD_SIGNAL, value: SIGHUP}
        - {name: POLL_INTERVAL, value: 1s}
        - {name: METRICS_ADDR, value: ":9533"}
      ports: [{name: metrics, containerPort: 9533}]
      readinessProbe: {httpGet: {path: /readyz, port: metrics}, periodSeconds: 1}
      securityContext:
        runAsUser: $4
        runAsGroup: 101
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
      volumeMounts:
        - {name: conf, mountPath: /etc/nginx/conf.d, readOnly: true}
  volumes:
    - name: conf
      $2
    - name: tmp
      emptyDir: {}
EOF
}
# nginx_conf TEXT prints an nginx server block that answers TEXT.
nginx_conf() {
	printf 'server {\n    listen 8080;\n    location / {\n        default_type text/plain;\n        return 200 "%s\\n";\n    }\n    location = /healthz {\n        return 200 "ok\\n";\n    }\n}\n' "$1"
}

# seccomp_of NS POD COMM prints the seccomp mode (/proc/PID/status) of the
# pod's process named COMM, as the host sees it: 2 is a filter, which is what
# the runtime's RuntimeDefault profile installs.
seccomp_of() {
	local uid p
	uid=$(k get pod -n "$1" "$2" -o jsonpath='{.metadata.uid}')
	for p in /proc/[0-9]*; do
		[[ $(cat "$p/comm" 2>/dev/null) == "$3" ]] && grep -q "pod$uid" "$p/cgroup" 2>/dev/null || continue
		awk '$1 == "Seccomp:" { print $2 }' "$p/status"
		return 0
	done
	echo "no process"
}

# reload_check NS POD KIND NAME KEY: patches key KEY of ConfigMap or
# Secret NAME with a new nginx answer, waits until nginx serves it, and checks
# the sidecar's reload counter and nginx's own log of the SIGHUP.
reload_check() {
	local ns=$1 pod=$2 kind=$3 name=$4 key=$5 ip token patch t0 latency ok hup
	ip=$(k get pod -n "$ns" "$pod" -o jsonpath='{.status.podIP}')
	[[ -n $ip ]] || { echo "pod $ns/$pod has no IP"; return 1; }
	before=$(http_get "http://$ip:8080/")
	token="reloaded-$RANDOM$RANDOM"
	if [[ $kind == configmap ]]; then
		patch=$(jq -cn --arg k "$key" --arg v "$(nginx_conf "$token")" '{data: {($k): $v}}')
	else
		patch=$(jq -cn --arg k "$key" --arg v "$(nginx_conf "$token")" '{stringData: {($k): $v}}')
	fi
	t0=$(date +%s.%N)
	k patch "$kind" -n "$ns" "$name" --type merge -p "$patch" >/dev/null
	if ! wait_served "http://$ip:8080/" "$token" 60; then
		echo "nginx still answers '$(http_get "http://$ip:8080/")' 60 s after the patch (before: '$before'); sidecar log: $(k logs -n "$ns" "$pod" -c pollreload 2>&1 | tail -n 5 | tr '\n' ' ')"
		return 1
	fi
	latency=$(since "$t0")
	ok=$(verified_successes "$ip")
	hup=$(k logs -n "$ns" "$pod" -c nginx 2>&1 | grep -m1 -o 'signal 1 (SIGHUP) received from [0-9]*, reconfiguring' || true)
	if [[ $ok != 1 ]]; then
		echo "nginx serves the patch after ${latency} s, but pollreload_reloads_total{result=\"success\"} is '$ok', not 1"
		return 1
	fi
	if [[ -z $hup ]]; then
		echo "nginx serves the patch but its log has no SIGHUP line (restarted instead of reloaded?)"
		return 1
	fi
	restarts=$(k get pod -n "$ns" "$pod" -o jsonpath='{.status.containerStatuses[?(@.name=="nginx")].restartCount}')
	seccomp=$(seccomp_of "$ns" "$pod" pollreload)
	[[ $seccomp == 2 ]] || { echo "the sidecar runs with seccomp mode '$seccomp', not 2 (RuntimeDefault filter)"; return 1; }
	echo "ok: patch->served ${latency} s, reloads_total{result=\"success\"}=$ok, nginx restarts $restarts, nginx: \"$hup\", sidecar seccomp mode $seccomp"
}

failed=()
# scenario LABEL FUNCTION runs one scenario in a subshell (so set -e holds in
# it) and prints its cluster: line; a failure is recorded, the rest still run.
scenario() {
	local label=$1 out rc t0
	t0=$(date +%s.%N)
	set +e
	out=$(
		set -e
		"$2" 2>&1
	)
	rc=$?
	set -e
	out=$(tail -n 1 <<<"$out")
	if ((rc == 0)); then
		echo "cluster: $label: $out"
	elif [[ $out == skipped* ]]; then
		echo "cluster: $label: $out"
	else
		echo "cluster: $label: FAILED: ${out:-exit status $rc}"
		failed+=("$label")
	fi
	times+=("$label $(since "$t0") s")
}
