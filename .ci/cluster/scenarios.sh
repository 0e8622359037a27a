# shellcheck shell=bash
# .ci/cluster/scenarios.sh: the scenarios .ci/cluster.sh runs, one function
# each (s1_helm ... s6_check), and the pods they share. Sourced by
# .ci/cluster.sh, which calls them in order.

# start_scenario_pods makes the namespace "pods" and the pods of scenarios 3,
# 5 and 6, which start while scenario 1 runs. The namespace is also
# "restricted", and has no Service named pollreload.
start_scenario_pods() {
	restricted_ns pods
	k create secret generic -n pods nginx-secret --from-literal=default.conf="$(nginx_conf initial)" >/dev/null
	k create configmap -n pods nginx-config --from-literal=default.conf="$(nginx_conf initial)" >/dev/null
	k create configmap -n pods wrapper-config --from-literal=message="wrapped app, first message" >/dev/null
	sidecar_pod secret-reload "secret: {secretName: nginx-secret}" true 101 | k apply -n pods -f - >/dev/null
	sidecar_pod no-shared-pid "configMap: {name: nginx-config}" false 101 | k apply -n pods -f - >/dev/null
	sidecar_pod uid-mismatch "configMap: {name: nginx-config}" true 102 | k apply -n pods -f - >/dev/null
	k apply -n pods -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: wrapper
spec:
  enableServiceLinks: false
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: app
      image: $wrapper_image
      imagePullPolicy: Never
      env:
        - {name: CONFIG_DIR, value: /config}
        - {name: RELOAD_SIGNAL, value: SIGHUP}
        - {name: POLL_INTERVAL, value: 1s}
        - {name: METRICS_ADDR, value: ":9533"}
      ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9533}]
      readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
      securityContext:
        runAsUser: 1000
        runAsGroup: 1000
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
      volumeMounts:
        - {name: config, mountPath: /config, readOnly: true}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: config
      configMap: {name: wrapper-config}
    - name: tmp
      emptyDir: {}
EOF
}


helm_image_args=(--set "sidecar.image.repository=${pollreload_image%:*}" --set "sidecar.image.tag=${pollreload_image##*:}"
	--set sidecar.image.pullPolicy=Never --set "app.image.repository=${nginx_image%:*}"
	--set "app.image.tag=${nginx_image##*:}" --set app.image.pullPolicy=Never)

# chart_pod NS RELEASE [SECONDS] prints the name of the release's pod once
# it exists, waiting up to SECONDS (30).
chart_pod() {
	local i p
	for ((i = 0; i < ${3:-30} * 5; i++)); do
		p=$(k get pods -n "$1" -l "app.kubernetes.io/instance=$2" -o jsonpath='{.items[*].metadata.name}' 2>/dev/null)
		[[ -n $p ]] && { echo "${p%% *}"; return 0; }
		sleep 0.2
	done
	return 1
}
# running NS POD CONTAINER succeeds when the container is running.
running() {
	[[ -n $(k get pod -n "$1" "$2" -o jsonpath="{.status.containerStatuses[?(@.name==\"$3\")].state.running}" 2>/dev/null) ]]
}

s1_helm() {
	local t0 pod refused ready refusal
	restricted_ns pollreload
	# The namespace must refuse a pod that breaks "restricted".
	if refused=$(k create -n pollreload -f - 2>&1 <<EOF
apiVersion: v1
kind: Pod
metadata: {name: privileged}
spec:
  containers:
    - {name: app, image: $nginx_image, imagePullPolicy: Never, securityContext: {privileged: true}}
EOF
	); then
		echo "a privileged pod was admitted into the restricted namespace: $refused"
		return 1
	fi
	grep -q 'violates PodSecurity "restricted' <<<"$refused" || { echo "privileged pod refused, but not by PodSecurity: $refused"; return 1; }
	refusal=$(grep -o 'violates PodSecurity.*' <<<"$refused")
	refusal="privileged pod refused: ${refusal:0:160}"
	t0=$(date +%s.%N)
	helm install pollreload charts/pollreload -n pollreload "${helm_image_args[@]}" >/dev/null
	k get service -n pollreload pollreload >/dev/null
	pod=$(chart_pod pollreload pollreload) || { echo "helm install made no pod; $refusal"; return 1; }
	if ! ready=$(wait_ready pollreload "$pod" 90); then
		echo "Service pollreload created, pod $pod admitted, but: $ready; $refusal"
		return 1
	fi
	ready=$(k get pod -n pollreload "$pod" -o jsonpath='{range .status.containerStatuses[*]}{.name}{" "}{end}')
	echo "ok: Service pollreload, pod $pod Ready (${ready% }) $(since "$t0") s after helm install; $refusal"
}

s2_configmap() {
	local pod
	pod=$(chart_pod pollreload pollreload 1) || { echo "no pod from scenario 1"; return 1; }
	wait_ready pollreload "$pod" 5 >/dev/null || { echo "the chart's pod is not Ready (scenario 1)"; return 1; }
	reload_check pollreload "$pod" configmap pollreload-nginx default.conf
}

s3_secret() {
	wait_ready pods secret-reload 60
	reload_check pods secret-reload secret nginx-secret default.conf
}

s4_native() {
	local rendered pod
	rendered=$(helm template native charts/pollreload --kube-version "$k8s_version" --set sidecar.native=true "${helm_image_args[@]}" 2>&1) || true
	if ! grep -q 'initContainers:' <<<"$rendered"; then
		if ! grep -qE '^ +native:' charts/pollreload/values.yaml; then
			echo "skipped (chart has no sidecar.native)"
			return 1
		fi
		echo "values.yaml has sidecar.native, but --set sidecar.native=true renders no initContainers: $(tail -n 1 <<<"$rendered")"
		return 1
	fi
	restricted_ns native
	helm install native charts/pollreload -n native --set sidecar.native=true "${helm_image_args[@]}" >/dev/null
	pod=$(chart_pod native native) || { echo "helm install made no pod"; return 1; }
	[[ $(k get pod -n native "$pod" -o jsonpath='{.spec.initContainers[0].restartPolicy}') == Always ]] ||
		{ echo "the chart's pod has no init container with restartPolicy: Always"; return 1; }
	wait_ready native "$pod" 90
	reload_check native "$pod" configmap native-pollreload-nginx default.conf
}

s5_wrapper() {
	local ip token t0 latency orphan opid oppid ostate ok pid1
	wait_ready pods wrapper 60
	ip=$(k get pod -n pods wrapper -o jsonpath='{.status.podIP}')
	pid1=$(k exec -n pods wrapper -- cat /proc/1/cmdline | tr '\0' ' ')
	[[ $pid1 == /pollreload* ]] || { echo "PID 1 in the container is '$pid1', not pollreload"; return 1; }
	token="second message $RANDOM$RANDOM"
	t0=$(date +%s.%N)
	k patch configmap -n pods wrapper-config --type merge -p "{\"data\":{\"message\":\"$token\"}}" >/dev/null
	wait_served "http://$ip:8080/" "$token" 60 ||
		{ echo "app still answers '$(http_get "http://$ip:8080/" | tr '\n' ' ')' 60 s after the patch; log: $(k logs -n pods wrapper 2>&1 | tail -n 5 | tr '\n' ' ')"; return 1; }
	latency=$(since "$t0")
	grep -qx 'reloads=1' <<<"$(http_get "http://$ip:8080/")" || { echo "app answers '$(http_get "http://$ip:8080/" | tr '\n' ' ')', want reloads=1"; return 1; }
	ok=$(verified_successes "$ip")
	[[ $ok == 1 ]] || { echo "reloaded, but pollreload_reloads_total{result=\"success\"} is '$ok'"; return 1; }
	# The orphan wrote its PID and parent a second after start, and exited 2 s later.
	orphan=$(k exec -n pods wrapper -- cat /tmp/orphan 2>&1) || { echo "the orphan left no /tmp/orphan: $orphan"; return 1; }
	read -r opid oppid <<<"$orphan"
	[[ $oppid == 1 ]] || { echo "the orphan $opid had parent $oppid, not PID 1"; return 1; }
	for _ in $(seq 50); do
		ostate=$(k exec -n pods wrapper -- sh -c "if [ -e /proc/$opid ]; then read -r _ _ s _ 2>/dev/null </proc/$opid/stat; echo \$s; else echo gone; fi" 2>&1)
		[[ $ostate == gone || $ostate == Z ]] && break
		sleep 0.2
	done
	if [[ $ostate != gone ]]; then
		echo "app reloaded (patch->served $latency s), but the orphan PID $opid (parent PID 1) is left in state '$ostate' (a zombie: not reaped)"
		return 1
	fi
	echo "ok: patch->served $latency s, app answers reloads=1, reloads_total{result=\"success\"}=$ok; orphan PID $opid (parent PID 1) reaped"
}

# check_in NS POD runs `pollreload check` in the pod's pollreload container
# and prints its output, then "exit N" on a line of its own.
check_in() {
	local out rc=0
	out=$(k exec -n "$1" "$2" -c pollreload -- /pollreload check 2>&1) || rc=$?
	printf '%s\nexit %d\n' "$out" "$rc"
}

s6_check() {
	local out good chart="" pod
	wait_ready pods secret-reload 30 >/dev/null || { echo "pod secret-reload not Ready"; return 1; }
	out=$(check_in pods secret-reload)
	grep -qx 'exit 0' <<<"$out" && good=$(grep -m1 '^OK' <<<"$out") ||
		{ echo "check did not say OK in the good pod: $(tr '\n' ' ' <<<"$out")"; return 1; }
	# The chart's pod too, when scenario 1 got it Ready.
	if pod=$(chart_pod pollreload pollreload 1) && wait_ready pollreload "$pod" 1 >/dev/null; then
		out=$(check_in pollreload "$pod")
		grep -qx 'exit 0' <<<"$out" && grep -q '^OK' <<<"$out" ||
			{ echo "check did not say OK in the chart's pod: $(tr '\n' ' ' <<<"$out")"; return 1; }
		chart=" (also in the chart's pod)"
	fi
	for pod in no-shared-pid uid-mismatch; do
		wait_for "container pollreload of pod pods/$pod running" 60 running pods "$pod" pollreload
	done
	local no_share mismatch
	no_share=$(check_in pods no-shared-pid)
	! grep -qx 'exit 0' <<<"$no_share" && grep -q 'shareProcessNamespace: true' <<<"$no_share" ||
		{ echo "check without shareProcessNamespace does not fail naming the fix: $(tr '\n' ' ' <<<"$no_share")"; return 1; }
	mismatch=$(check_in pods uid-mismatch)
	! grep -qx 'exit 0' <<<"$mismatch" && grep -q 'runAsUser to 101' <<<"$mismatch" ||
		{ echo "check with sidecar UID 102, app UID 101 does not fail naming runAsUser 101: $(tr '\n' ' ' <<<"$mismatch")"; return 1; }
	echo "ok: good pod: \"$good\"$chart; no shareProcessNamespace ($(tail -n 1 <<<"$no_share")): \"...$(grep -m1 -o 'set shareProcessNamespace: true.*' <<<"$no_share")\"; sidecar UID 102, app 101 ($(tail -n 1 <<<"$mismatch")): \"...$(grep -m1 -o 'pollreload runs as uid 102.*' <<<"$mismatch")\""
}
