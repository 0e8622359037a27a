# shellcheck shell=bash
# .ci/cluster/wrapped.sh: scenario 7, the chart's wrapper mode (issue 18) in
# a "restricted" namespace: an init container copies pollreload into an
# emptyDir, nginx runs as `pollreload -- nginx`, and `nginx -t`
# (RELOAD_CHECK_COMMAND) decides before each delivery. A Prometheus on the
# host scrapes pollreload and evaluates monitoring/alerts.yaml. Sourced by
# .ci/cluster.sh, which starts that Prometheus (start_prometheus) in the
# script itself, so that teardown stops it, and then calls s7_wrapped.

wrapped_ns=wrapped
# The nginx image's entrypoint, which a chart cannot read: pollreload's child.
wrapped_command='["/usr/sbin/nginx","-e","stderr","-g","daemon off;"]'
# nginx -t as the check before a delivery; -e stderr, since the UID the image
# chooses may not open the compiled-in /var/log/nginx/error.log.
wrapped_check="/usr/sbin/nginx -t -e stderr"

# start_prometheus starts a Prometheus on 127.0.0.1 that scrapes the targets
# s7_wrapped writes to $state/prometheus/targets.json, every second, and
# evaluates the shipped alerting rules.
start_prometheus() {
	prom_port=$(free_port)
	mkdir -p "$state/prometheus/data"
	echo '[]' >"$state/prometheus/targets.json"
	cat >"$state/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/monitoring/alerts.yaml
scrape_configs:
  - job_name: pollreload
    file_sd_configs:
      - files: [$state/prometheus/targets.json]
        refresh_interval: 1s
EOF
	start prometheus prometheus --config.file "$state/prometheus/prometheus.yml" \
		--storage.tsdb.path "$state/prometheus/data" --web.listen-address "127.0.0.1:$prom_port"
	wait_for "prometheus ready on 127.0.0.1:$prom_port" 60 curl -sf --noproxy '*' "http://127.0.0.1:$prom_port/-/ready"
}

# prom_query EXPR prints the values of the instant query EXPR, one a line.
prom_query() {
	curl -s --noproxy '*' -m 5 "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
		jq -r '.data.result[]? | .value[1]'
}

# alert_expr NAME prints the expr of alert NAME in monitoring/alerts.yaml.
alert_expr() {
	awk -v a="$1" '$0 ~ "- alert: " a "$" { f = 1; next } f && $1 == "expr:" { sub(/^ *expr: */, ""); print; exit }' monitoring/alerts.yaml
}

# sighups NS POD prints how many SIGHUPs nginx logged in the pod.
sighups() {
	container_log "$1" "$2" nginx | grep -c 'signal 1 (SIGHUP) received' || true
}

# uid_of NS POD COMM prints the real UID of the pod's process named COMM
# (the first, by PID), as the host sees it.
uid_of() {
	local uid p
	uid=$(k get pod -n "$1" "$2" -o jsonpath='{.metadata.uid}')
	for p in $(ls -d /proc/[0-9]* | sort -t/ -k3 -n); do
		[[ $(cat "$p/comm" 2>/dev/null) == "$3" ]] && grep -q "pod$uid" "$p/cgroup" 2>/dev/null || continue
		awk '$1 == "Uid:" { print $2 }' "$p/status"
		return 0
	done
	echo "none"
}

# wait_metric IP PREFIX VALUE waits up to 30 s until the sum of the samples
# starting with PREFIX is VALUE, and prints what it read last.
wait_metric() {
	local v i
	for ((i = 0; i < 150; i++)); do
		v=$(metric_sum "$1" "$2")
		[[ $v == "$3" ]] && break
		sleep 0.2
	done
	echo "$v"
}

# patch_nginx TEXT patches the chart's ConfigMap with a whole server block.
patch_nginx() {
	k patch configmap -n "$wrapped_ns" wrapped-pollreload-nginx --type merge \
		-p "$(jq -cn --arg v "$1" '{data: {"default.conf": $v}}')" >/dev/null
}

s7_wrapped() {
	local pod ip spec_share app_uid_spec copy_log uid_nginx uid_pr token1 token2 t0 lat1 lat2 ok rejected gauge hups expr fired pending cleared why
	if ! git grep -q RELOAD_CHECK_COMMAND -- '*.go'; then
		echo "skipped (pollreload has no RELOAD_CHECK_COMMAND yet)"
		return 1
	fi
	restricted_ns "$wrapped_ns"
	helm install wrapped charts/pollreload -n "$wrapped_ns" "${helm_image_args[@]}" \
		--set sidecar.mode=wrapper --set-json "sidecar.wrapper.command=$wrapped_command" \
		--set sidecar.pollInterval=1s --set sidecar.logFormat=text \
		--set-json "sidecar.extraEnv=[{\"name\":\"RELOAD_CHECK_COMMAND\",\"value\":\"$wrapped_check\"}]" \
		--set sidecar.securityContext.runAsUser=null --set sidecar.securityContext.runAsGroup=null \
		--set app.securityContext.runAsUser=null --set app.securityContext.runAsGroup=null >/dev/null
	pod=$(chart_pod "$wrapped_ns" wrapped) || { echo "helm install made no pod"; return 1; }
	wait_ready "$wrapped_ns" "$pod" 90
	ip=$(k get pod -n "$wrapped_ns" "$pod" -o jsonpath='{.status.podIP}')

	# The pod: no shared PID namespace, no UID set for nginx; nginx and
	# pollreload run as the UID the image chose.
	spec_share=$(k get pod -n "$wrapped_ns" "$pod" -o jsonpath='{.spec.shareProcessNamespace}')
	[[ -z $spec_share ]] || { echo "the pod sets shareProcessNamespace: $spec_share"; return 1; }
	app_uid_spec=$(k get pod -n "$wrapped_ns" "$pod" -o jsonpath='{.spec.containers[0].securityContext.runAsUser}{.spec.securityContext.runAsUser}')
	[[ -z $app_uid_spec ]] || { echo "the pod spec sets runAsUser $app_uid_spec; want the image's choice"; return 1; }
	uid_nginx=$(uid_of "$wrapped_ns" "$pod" nginx)
	uid_pr=$(uid_of "$wrapped_ns" "$pod" pollreload)
	[[ $uid_nginx == "$uid_pr" && $uid_nginx != none && $uid_nginx != 0 ]] ||
		{ echo "nginx runs as UID $uid_nginx, pollreload as $uid_pr; want one non-root UID"; return 1; }
	copy_log=$(k logs -n "$wrapped_ns" "$pod" -c pollreload 2>&1 | tail -n 1)
	[[ $copy_log == "copied pollreload to /pollreload-bin/pollreload"* ]] ||
		{ echo "the init container's log is '$copy_log'; want the copy verified"; return 1; }

	# 1. A valid patch: served, one SIGHUP, success 1.
	token1="wrapped-$RANDOM$RANDOM"
	t0=$(date +%s.%N)
	patch_nginx "$(nginx_conf "$token1")"
	wait_served "http://$ip:8080/" "$token1" 60 ||
		{ echo "nginx still answers '$(http_get "http://$ip:8080/")' 60 s after the valid patch; log: $(container_log "$wrapped_ns" "$pod" nginx | tail -n 5 | tr '\n' ' ')"; return 1; }
	lat1=$(since "$t0")
	ok=$(verified_successes "$ip")
	[[ $ok == 1 ]] || { echo "valid patch served, but reloads_total{result=\"success\"} is '$ok', not 1"; return 1; }
	hups=$(sighups "$wrapped_ns" "$pod")
	[[ $hups == 1 ]] || { echo "valid patch served, but nginx logged $hups SIGHUPs, not 1"; return 1; }

	# 2. An invalid patch: nginx -t refuses it, nothing is sent, the old page
	# stays, rejected is counted, the gauge reads 0 and the shipped alert's
	# expression is true over what Prometheus scraped.
	patch_nginx "$(printf 'server {\n    listen 8080;\n    no_such_directive on;\n}\n')"
	rejected=$(wait_metric "$ip" 'pollreload_reloads_total{result="rejected"' 1)
	[[ $rejected == 1 ]] ||
		{ echo "invalid patch: reloads_total{result=\"rejected\"} is '$rejected' after 30 s, not 1; log: $(container_log "$wrapped_ns" "$pod" nginx | tail -n 5 | tr '\n' ' ')"; return 1; }
	gauge=$(metric "$ip" pollreload_last_reload_successful)
	[[ $gauge == 0 ]] || { echo "invalid patch rejected, but pollreload_last_reload_successful is '$gauge', not 0"; return 1; }
	sleep 2 # a signal sent anyway would be in nginx's log by now
	hups=$(sighups "$wrapped_ns" "$pod")
	[[ $hups == 1 ]] || { echo "invalid patch: nginx logged $hups SIGHUPs; want still 1 (no signal)"; return 1; }
	[[ $(http_get "http://$ip:8080/") == *"$token1"* ]] ||
		{ echo "invalid patch: nginx answers '$(http_get "http://$ip:8080/")', not the old page"; return 1; }
	why=$(container_log "$wrapped_ns" "$pod" nginx | grep -m1 -o 'no_such_directive[^"]*' | head -c 120 || true)
	# Prometheus scrapes pollreload from now on; every sample it has reads 0.
	echo "[{\"targets\": [\"$ip:9533\"], \"labels\": {\"namespace\": \"$wrapped_ns\", \"pod\": \"$pod\"}}]" >"$state/prometheus/targets.json.tmp"
	mv "$state/prometheus/targets.json.tmp" "$state/prometheus/targets.json"
	expr=$(alert_expr PollreloadReloadFailing)
	[[ -n $expr ]] || { echo "no PollreloadReloadFailing expr in monitoring/alerts.yaml"; return 1; }
	for _ in $(seq 150); do
		fired=$(prom_query "$expr")
		pending=$(prom_query 'ALERTS{alertname="PollreloadReloadFailing"}')
		[[ -n $fired && -n $pending ]] && break
		sleep 0.2
	done
	[[ -n $fired ]] || { echo "PollreloadReloadFailing's expr ($expr) returns nothing over the scraped metrics after 30 s"; return 1; }
	[[ -n $pending ]] || { echo "PollreloadReloadFailing's expr is true ($fired), but Prometheus' rule has no ALERTS series"; return 1; }

	# 3. The fix: served, success 2, gauge 1.
	token2="fixed-$RANDOM$RANDOM"
	t0=$(date +%s.%N)
	patch_nginx "$(nginx_conf "$token2")"
	wait_served "http://$ip:8080/" "$token2" 60 ||
		{ echo "nginx still answers '$(http_get "http://$ip:8080/")' 60 s after the fix"; return 1; }
	lat2=$(since "$t0")
	ok=$(wait_metric "$ip" 'pollreload_reloads_total{result="success"' 2)
	gauge=$(wait_metric "$ip" pollreload_last_reload_successful 1)
	[[ $ok == 2 && $gauge == 1 ]] || { echo "fix served, but success is '$ok' (want 2) and the gauge '$gauge' (want 1)"; return 1; }
	hups=$(sighups "$wrapped_ns" "$pod")
	[[ $hups == 2 ]] || { echo "fix served, but nginx logged $hups SIGHUPs in all, not 2"; return 1; }
	# Prometheus sees the 1 too: the alert's expression is false again.
	for _ in $(seq 100); do
		cleared=$(prom_query "$expr")
		[[ -z $cleared ]] && break
		sleep 0.2
	done
	[[ -z $cleared ]] || { echo "fix delivered, but PollreloadReloadFailing's expr still returns $cleared after 20 s"; return 1; }
	echo "ok: valid patch served in $lat1 s (success 1, 1 SIGHUP); invalid patch: nginx -t refused it${why:+ (\"$why\")}, no SIGHUP, old page served, rejected 1, last_reload_successful 0, PollreloadReloadFailing expr true (value $fired; the rule pending in Prometheus); fix served in $lat2 s (success 2, gauge 1, 2 SIGHUPs in all, the expr false again); no shareProcessNamespace, nginx and pollreload both UID $uid_nginx (the image's); init: \"${copy_log:0:60}...\""
}
