# shellcheck shell=bash
# .ci/cluster/teardown.sh: the run's state directory, a record of what
# existed on the machine before the run, and the teardown (trapped on every
# exit) that removes what the run made and then lists what is left: nothing.
# Also removes what an earlier run killed before its teardown left. Sourced
# by .ci/cluster.sh.

# ------------------------------------------------------------------- state
state=$(mktemp -d /tmp/pollreload-cluster.XXXXXX)
chmod 755 "$state"
pki=$state/pki
logs=$state/logs
mkdir -p "$pki" "$logs"
export KUBECONFIG=$state/admin.kubeconfig
export KUBECACHEDIR=$state/kube-cache
export HELM_CACHE_HOME=$state/helm/cache HELM_CONFIG_HOME=$state/helm/config HELM_DATA_HOME=$state/helm/data
sock=$state/containerd/containerd.sock

# What existed before, so teardown removes only what this run made.
before_netns=$(ls /run/netns 2>/dev/null || true)
had_run_netns=false
[[ -e /run/netns ]] && had_run_netns=true
had_run_containerd=false
[[ -e /run/containerd ]] && had_run_containerd=true
before_shim_sockets=$(ls /run/containerd/s 2>/dev/null || true)
had_var_lib_cni=false
[[ -e /var/lib/cni ]] && had_var_lib_cni=true
had_log_containers=false
[[ -e /var/log/containers ]] && had_log_containers=true
# chains prints "COMMAND TABLE CHAIN" for each KUBE-* chain (the kubelet's).
chains() {
	local cmd t
	for cmd in iptables ip6tables; do
		for t in filter nat mangle; do
			"$cmd" -t "$t" -S 2>/dev/null | awk -v c="$cmd" -v t="$t" '$1 == "-N" && $2 ~ /^KUBE-/ { print c, t, $2 }'
		done
	done
}
before_chains=$(chains)
before_forwarding=$(cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding)
new_chains() { chains | grep -vxF -- "$before_chains" || true; }

# ---------------------------------------------------------------- teardown
images_built=()
buildah_ctrs=()
# stop_pid sends SIGTERM, waits up to $2 s, then SIGKILL, and reaps the PID.
stop_pid() {
	local pid=$1 grace=${2:-30} i
	alive "$pid" || { wait "$pid" 2>/dev/null || true; return; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 10; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}
pid_of() {
	local i
	for i in "${!names[@]}"; do [[ ${names[$i]} == "$1" ]] && echo "${pids[$i]}"; done
	return 0
}
# stop_group NAMES... stops those components together and prints when, in
# seconds since the teardown began (teardown's t0).
stop_group() {
	local group=() n p
	for n in "$@"; do
		p=$(pid_of "$n")
		[[ -n $p ]] && alive "$p" && kill -TERM "$p" 2>/dev/null && group+=("$p")
	done
	for p in "${group[@]}"; do stop_pid "$p" 40; done
	echo "  stopped $* at $(since "$t0") s"
}
# shim_pids lists the containerd shims serving this run's containerd.
shim_pids() {
	local p
	for p in /proc/[0-9]*; do
		[[ $(tr '\0' ' ' 2>/dev/null <"$p/cmdline") == *"-address $sock"* ]] && echo "${p#/proc/}"
	done
	return 0
}
leftovers() {
	local p
	for p in "${pids[@]}"; do alive "$p" && echo "process $p ($(cat "/proc/$p/comm" 2>/dev/null)) still running"; done
	for p in /proc/[0-9]*; do
		if [[ $(tr '\0' ' ' 2>/dev/null <"$p/cmdline") == *"$state"* ]]; then
			echo "process ${p#/proc/} ($(cat "$p/comm" 2>/dev/null)) still running: $(tr '\0' ' ' <"$p/cmdline" | cut -c1-120)"
		fi
	done
	for p in /proc/[0-9]*; do
		grep -q kubepods "$p/cgroup" 2>/dev/null && echo "container process ${p#/proc/} ($(cat "$p/comm" 2>/dev/null))"
	done
	grep -F -- "$state" /proc/self/mountinfo | awk '{ print "mount " $5 }'
	if $had_run_containerd; then
		for p in $(ls /run/containerd/s 2>/dev/null); do
			grep -qx -- "$p" <<<"$before_shim_sockets" || echo "shim socket /run/containerd/s/$p"
		done
	fi
	for p in $(ls /run/netns 2>/dev/null); do
		grep -qx -- "$p" <<<"$before_netns" || echo "network namespace /run/netns/$p"
	done
	ip link show "$bridge" >/dev/null 2>&1 && echo "bridge $bridge"
	ip -o link show type veth 2>/dev/null | awk -v b="$bridge" '$0 ~ "master " b { print "veth " $2 }'
	new_chains | awk '{ print $1 " chain " $3 " in table " $2 }'
	[[ $(cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding) == "$before_forwarding" ]] ||
		echo "IP forwarding changed: ipv4 and ipv6 forwarding $(cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding | tr '\n' ' ')(was $(tr '\n' ' ' <<<"$before_forwarding"))"
	ls -d /sys/fs/cgroup/*/kubepods* 2>/dev/null | sed 's/^/cgroup /'
	[[ -e $state ]] && echo "directory $state"
	[[ -e /run/containerd ]] && ! $had_run_containerd && echo "directory /run/containerd"
	[[ -e /var/lib/cni ]] && ! $had_var_lib_cni && echo "directory /var/lib/cni"
	[[ -e /run/netns ]] && ! $had_run_netns && echo "directory /run/netns"
	[[ -e /var/log/containers ]] && ! $had_log_containers && echo "directory /var/log/containers"
	find /var/log/containers -maxdepth 1 -lname "$state/*" 2>/dev/null | sed 's/^/symlink /'
	for p in "${images_built[@]}"; do
		buildah inspect --type image "$p" >/dev/null 2>&1 && echo "buildah image $p"
	done
	return 0
}
teardown() {
	local rc=$? t0 p t c
	trap - EXIT INT TERM ERR
	set +e
	t0=$(date +%s.%N)
	echo
	log "teardown"
	if [[ -n ${CLUSTER_KEEP_LOGS:-} && -d ${logs:-} ]]; then
		mkdir -p "$CLUSTER_KEEP_LOGS" && cp "$logs"/*.log "$CLUSTER_KEEP_LOGS/"
	fi
	if ((rc != 0)) && [[ -d ${logs:-} ]]; then
		for f in "$logs"/*.log; do
			echo "--- last lines of $(basename "$f")"
			tail -n 15 "$f"
		done
	fi
	# The controllers first, so that no ReplicaSet replaces the pods deleted
	# next; the kubelet stops those itself (CNI DEL, unmounts) while it runs.
	stop_group kube-controller-manager kube-scheduler
	p=$(pid_of kubelet)
	if [[ -n $p ]] && alive "$p"; then
		"$kubectl" delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1
		for _ in $(seq 100); do
			[[ $(ctr -a "$sock" -n k8s.io tasks ls 2>/dev/null) == *RUNNING* ]] || break
			sleep 0.2
		done
		echo "  pods stopped by the kubelet at $(since "$t0") s"
	fi
	# The apiserver once nothing watches it any more: it waits for watches.
	stop_group kubelet
	stop_group kube-apiserver
	stop_group etcd
	# Whatever the kubelet left: kill and delete each task and container.
	if [[ -S $sock ]]; then
		for c in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
			ctr -a "$sock" -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1
		done
		sleep 0.5
		for c in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
			ctr -a "$sock" -n k8s.io tasks delete -f "$c" >/dev/null 2>&1
		done
		for c in $(ctr -a "$sock" -n k8s.io containers ls -q 2>/dev/null); do
			ctr -a "$sock" -n k8s.io containers delete "$c" >/dev/null 2>&1
		done
	fi
	p=$(pid_of containerd)
	[[ -n $p ]] && stop_pid "$p" 20
	for p in $(shim_pids); do
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do stop_pid "$p" 5; done
	# Mounts under the state directory, deepest first, and the pods' netns.
	for _ in 1 2 3; do
		grep -F -- "$state" /proc/self/mountinfo 2>/dev/null | awk '{ print $5 }' | sort -r | while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		done
	done
	for p in $(ls /run/netns 2>/dev/null); do
		if ! grep -qx -- "$p" <<<"$before_netns" && [[ $p == cni-* ]]; then
			umount "/run/netns/$p" 2>/dev/null || umount -l "/run/netns/$p" 2>/dev/null
			rm -f "/run/netns/$p"
		fi
	done
	$had_run_netns || rmdir /run/netns 2>/dev/null
	ip link del "$bridge" 2>/dev/null
	# The kubelet's iptables chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, ...):
	# first the rules that jump to them, then their rules, then the chains.
	new_chains | while read -r cmd t c; do
		"$cmd" -t "$t" -S 2>/dev/null | grep -E -- "-j $c( |\$)" | sed 's/^-A /-D /' | while read -r rule; do
			eval "$cmd -t $t $rule" 2>/dev/null
		done
	done
	new_chains | while read -r cmd t c; do "$cmd" -t "$t" -F "$c" 2>/dev/null; done
	new_chains | while read -r cmd t c; do "$cmd" -t "$t" -X "$c" 2>/dev/null; done
	for d in /sys/fs/cgroup/*/kubepods*; do
		[[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	find /var/log/containers -maxdepth 1 -lname "$state/*" -delete 2>/dev/null
	$had_log_containers || rmdir /var/log/containers 2>/dev/null
	$had_var_lib_cni || rm -rf /var/lib/cni
	$had_run_containerd || rm -rf /run/containerd
	for c in "${buildah_ctrs[@]}"; do buildah rm "$c" >/dev/null 2>&1; done
	for p in "${images_built[@]}"; do buildah rmi "$p" >/dev/null 2>&1; done
	[[ -n ${state:-} && -d $state ]] && rm -rf "$state"
	if $had_run_containerd; then
		for p in $(ls /run/containerd/s 2>/dev/null); do
			grep -qx -- "$p" <<<"$before_shim_sockets" || rm -f "/run/containerd/s/$p"
		done
	fi
	t="$(leftovers)"
	times+=("teardown $(since "$t0") s")
	local joined
	joined=$(printf '%s, ' "${times[@]}")
	echo "cluster: times: ${joined}total $(since "$t_start") s"
	if [[ -z $t ]]; then
		echo "cluster: left on the machine after teardown: nothing"
	else
		echo "cluster: left on the machine after teardown:"
		sed 's/^/  /' <<<"$t"
		((rc == 0)) && rc=1
	fi
	exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of an earlier run that was killed before its teardown. (This
# file is sourced: its last command's status is the source's, so none may
# fail here.)
if ip link del "$bridge" 2>/dev/null; then log "removed a bridge $bridge left by an earlier run"; fi
for d in /sys/fs/cgroup/*/kubepods*; do
	[[ -d $d ]] || continue
	find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
done
