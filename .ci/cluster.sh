#!/usr/bin/env bash
# .ci/cluster.sh proves pollreload in a real single-node Kubernetes built and
# started from nothing: etcd (Debian), kube-apiserver with PodSecurity
# admission, kube-controller-manager, kube-scheduler, kubelet and kubectl
# (built from k8s.io/kubernetes through the Go module proxy, from the scratch
# module in .ci/cluster/), containerd and runc (Debian) and a CNI bridge. No
# image can be pulled here, so every image is built locally with buildah and
# imported into the node: pollreload's from the Dockerfile (.ci/image.sh), a
# pause image, nginx assembled from the host's Debian nginx and its shared
# libraries, and a wrapper-mode image.
#
# Scenarios, each checked from outside (kubectl, the sidecar's /metrics over
# the pod IP, the app's own answer) and each printing one `cluster: ...` line:
#   1. helm install of charts/pollreload into a namespace that enforces Pod
#      Security "restricted"; both containers Ready; a privileged pod refused.
#   2. kubectl patch of the chart's ConfigMap: nginx serves the new content,
#      reloads_total{result="success"} is 1, patch-to-served time logged.
#   3. the same with a Secret volume.
#   4. the chart's native-sidecar mode (sidecar.native), when the chart has it.
#   5. wrapper mode as a container's PID 1: app reloaded, orphan reaped.
#   6. pollreload check: OK in a good pod, the fix named without
#      shareProcessNamespace and with a sidecar UID that differs from the app's.
# Then everything is torn down (on every exit, by trap) and what is left on
# the machine is printed: nothing.
#
# The Kubernetes binaries are cached by version and build inputs in
# /var/cache/pollreload-cluster (CLUSTER_CACHE), so only the first run builds
# them (about 6 minutes on 2 cores). Traffic stays on 127.0.0.1 and the pod
# network this script creates (10.244.77.0/24 on bridge prci0); IP forwarding
# is not enabled, so nothing is routed off the machine.
#
# Needs: root, Go at /usr/local/go; installs containerd, runc, etcd-server,
# containernetworking-plugins, iptables, iproute2, openssl, buildah,
# busybox-static, nginx-light and curl when missing, and helm like
# .ci/chart.sh does.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH:/usr/sbin:/sbin
PATH=$PATH:$(go env GOPATH)/bin

k8s_version=v1.34.2
cache=${CLUSTER_CACHE:-/var/cache/pollreload-cluster}
node=pollreload-ci
bridge=prci0
pod_cidr=10.244.77.0/24
node_ip=10.244.77.1
service_cidr=10.244.78.0/24
# .ci/image.sh's image, and this run's own name for it (other runs of
# image.sh on the machine replace the first).
built_image=localhost/pollreload:ci
pollreload_image=localhost/pollreload-ci/pollreload:ci
pause_image=localhost/pollreload-ci/pause:ci
nginx_image=localhost/pollreload-ci/nginx:ci
wrapper_image=localhost/pollreload-ci/wrapper:ci

t_start=$(date +%s.%N)
t_mark=$t_start
times=()
# part records how long the part that just ended took, for the summary.
part() {
	local took
	took=$(since "$t_mark")
	t_mark=$(date +%s.%N)
	times+=("$1 $took s")
	echo "== $1 took $took s"
}
log() { printf '== %s\n' "$*"; }
die() {
	echo "cluster.sh: $*" >&2
	exit 1
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

[[ $(id -u) == 0 ]] || die "must run as root (it starts containerd and the kubelet)"

# ---------------------------------------------------------------- packages
install_missing() {
	local missing=() pair
	for pair in "$@"; do
		[[ -e ${pair#*=} ]] || missing+=("${pair%%=*}")
	done
	((${#missing[@]} == 0)) && return
	log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
}
install_missing containerd=/usr/bin/containerd runc=/usr/sbin/runc etcd-server=/usr/bin/etcd \
	containernetworking-plugins=/usr/lib/cni/bridge iptables=/usr/sbin/iptables \
	iproute2=/usr/sbin/ip openssl=/usr/bin/openssl buildah=/usr/bin/buildah \
	busybox-static=/bin/busybox nginx-light=/usr/sbin/nginx curl=/usr/bin/curl jq=/usr/bin/jq
if ! command -v helm >/dev/null; then
	log "installing helm"
	go install helm.sh/helm/v3/cmd/helm@v3.16.3
fi

mkdir -p "$cache"
# One cluster at a time: the bridge, the pod network and the node name are fixed.
exec 9>"$cache/lock"
flock -w 900 9 || die "another .ci/cluster.sh holds $cache/lock"

# ------------------------------------------------------- kubernetes binaries
kube_ldflags="-s -w"
for kv in gitVersion=$k8s_version gitMajor=1 gitMinor=34 gitTreeState=clean \
	gitCommit=$k8s_version buildDate=1970-01-01T00:00:00Z; do
	kube_ldflags+=" -X k8s.io/client-go/pkg/version.$kv -X k8s.io/component-base/version.$kv"
done
kube_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
key=$(cat .ci/cluster/go.mod .ci/cluster/go.sum <(go version) <(echo "$kube_ldflags") | sha256sum | cut -c1-12)
bin=$cache/$k8s_version-$key
have=true
for c in "${kube_cmds[@]}"; do [[ -x $bin/$c ]] || have=false; done
if $have; then
	log "kubernetes $k8s_version binaries cached in $bin"
else
	log "building ${kube_cmds[*]} $k8s_version into $bin (cold: several minutes)"
	rm -rf "$bin.tmp"
	mkdir -p "$bin.tmp"
	pkgs=()
	for c in "${kube_cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
	(cd .ci/cluster && CGO_ENABLED=0 go build -trimpath -ldflags "$kube_ldflags" -o "$bin.tmp/" "${pkgs[@]}")
	rm -rf "$bin"
	mv "$bin.tmp" "$bin"
	# Older builds of other versions or inputs are of no further use.
	find "$cache" -mindepth 1 -maxdepth 1 -type d ! -path "$bin" -exec rm -rf {} +
fi
(cd .ci/cluster && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/pause" ./pause)
kubectl=$bin/kubectl
"$kubectl" version --client | sed -n 1p
part "build"

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

pids=()
names=()
# start runs a component in the background, its output in $logs/NAME.log.
start() {
	local name=$1
	shift
	# 9>&-: the run's lock must not outlive it in a component or a shim.
	"$@" >"$logs/$name.log" 2>&1 9>&- &
	pids+=($!)
	names+=("$name")
}
# alive succeeds while PID runs; an exited child that is not reaped yet (a
# zombie, which kill -0 still finds) counts as gone.
alive() {
	local st
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z ]]
}
# check_components dies naming the first component that has exited, with the
# end of its log: what it answered.
check_components() {
	local i
	for i in "${!names[@]}"; do
		alive "${pids[$i]}" && continue
		die "${names[$i]} exited during the start; the end of its log: $(tail -n 5 "$logs/${names[$i]}.log")"
	done
}

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

# Leftovers of an earlier run that was killed before its teardown.
ip link del "$bridge" 2>/dev/null && log "removed a bridge $bridge left by an earlier run"
for d in /sys/fs/cgroup/*/kubepods*; do
	[[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
done

# ------------------------------------------------------------------ images
log "images"
if ! rev=$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.revision"}}' "$built_image" 2>/dev/null) ||
	! git cat-file -e "$rev^{commit}" 2>/dev/null ||
	! git diff --quiet "$rev" -- Dockerfile go.mod go.sum $(git ls-files '*.go' | grep -v '^\.ci/'); then
	log "building $built_image from the Dockerfile (.ci/image.sh)"
	bash .ci/image.sh
else
	log "$built_image is current (built from $rev)"
fi
buildah tag "$built_image" "$pollreload_image"
images_built+=("$pollreload_image")

# new_image commits rootfs $2 as image $1 with the buildah config flags after it.
new_image() {
	local name=$1 root=$2 ctr
	shift 2
	ctr=$(buildah from scratch)
	buildah_ctrs+=("$ctr")
	buildah copy --quiet "$ctr" "$root" / >/dev/null
	buildah config "$@" "$ctr"
	buildah rmi "$name" >/dev/null 2>&1 || true
	buildah commit --quiet --rm "$ctr" "$name" >/dev/null
	unset 'buildah_ctrs[-1]'
	images_built+=("$name")
}
img=$state/images
mkdir -p "$img"

root=$img/pause-root
mkdir -p "$root"
cp "$bin/pause" "$root/pause"
new_image "$pause_image" "$root" --entrypoint '["/pause"]' --user 65535:65535

# nginx: the host's Debian nginx with the shared libraries ldd names, and a
# configuration laid out like nginxinc/nginx-unprivileged's (UID 101, port
# 8080, pid and temp files in /tmp, conf.d included).
root=$img/nginx-root
mkdir -p "$root"/{usr/sbin,etc/nginx/conf.d,tmp}
cp /usr/sbin/nginx "$root/usr/sbin/nginx"
for lib in $(ldd /usr/sbin/nginx | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
	cp --parents -L "$lib" "$root"
done
cp /etc/nginx/mime.types "$root/etc/nginx/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnginx:x:101:101:nginx:/nonexistent:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnginx:x:101:\n' >"$root/etc/group"
cat >"$root/etc/nginx/nginx.conf" <<'EOF'
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path /tmp/client_body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    include /etc/nginx/conf.d/*.conf;
}
EOF
new_image "$nginx_image" "$root" --user 101:101 --port 8080 \
	--entrypoint '["/usr/sbin/nginx", "-e", "stderr", "-g", "daemon off;"]'

# wrapper: pollreload's image plus busybox and a small app that serves
# /config/message over HTTP, renders it again on SIGHUP, and leaves an orphan.
root=$img/wrapper-root
mkdir -p "$root"/{bin,app}
cp /bin/busybox "$root/bin/busybox"
for applet in sh cat sleep httpd mkdir kill ps; do ln -s busybox "$root/bin/$applet"; done
cat >"$root/app/run.sh" <<'EOF'
#!/bin/sh
# The app pollreload wraps: busybox httpd serves /tmp/www; SIGHUP renders the
# page again from /config/message. At start it leaves one orphan: a
# subshell's child that outlives its parent and so is handed to PID 1.
reloads=0
render() { printf '%s\nreloads=%d\n' "$(cat /config/message)" "$reloads" >/tmp/www/index.html; }
mkdir -p /tmp/www
render
trap 'reloads=$((reloads + 1)); render' HUP
trap 'kill $httpd 2>/dev/null; exit 0' TERM INT
httpd -f -p 8080 -h /tmp/www &
httpd=$!
(sh -c 'sleep 1; read -r _ _ _ ppid _ </proc/$$/stat; echo "$$ $ppid" >/tmp/orphan; sleep 2' &)
while :; do
	sleep 1 &
	wait $!
done
EOF
chmod 755 "$root/app/run.sh"
ctr=$(buildah from --pull=never "$pollreload_image")
buildah_ctrs+=("$ctr")
buildah copy --quiet "$ctr" "$root" / >/dev/null
buildah config --entrypoint '["/pollreload", "--", "/bin/sh", "/app/run.sh"]' "$ctr"
buildah rmi "$wrapper_image" >/dev/null 2>&1 || true
buildah commit --quiet --rm "$ctr" "$wrapper_image" >/dev/null
unset 'buildah_ctrs[-1]'
images_built+=("$wrapper_image")

for name in "$pollreload_image" "$pause_image" "$nginx_image" "$wrapper_image"; do
	buildah push --quiet "$name" "docker-archive:$img/$(basename "${name%%:*}").tar:$name" >/dev/null
done
part "images"

# ------------------------------------------------------------ certificates
log "certificates"
openssl_quiet() { openssl "$@" 2>/dev/null; }
openssl_quiet req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=pollreload-ci-ca"
# cert NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
cert() {
	local name=$1 subj=$2 eku=$3 san=${4:-}
	openssl_quiet req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$pki/$name.key" -out "$pki/$name.csr" -subj "$subj"
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$eku"
		[[ -n $san ]] && echo "subjectAltName=$san"
	} >"$pki/$name.ext"
	openssl_quiet x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
		-CAcreateserial -days 2 -extfile "$pki/$name.ext" -out "$pki/$name.crt"
}
cert apiserver "/CN=kube-apiserver" serverAuth \
	"IP:127.0.0.1,IP:${service_cidr%.0/24}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert kubelet "/CN=$node" serverAuth "IP:$node_ip,DNS:$node"
cert admin "/O=system:masters/CN=pollreload-ci-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert node "/O=system:nodes/CN=system:node:$node" clientAuth
openssl_quiet genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/sa.key"
openssl_quiet pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

# free_port prints a TCP port nothing on this machine listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		[[ -n $(ss -Htan "sport = :$p") ]] || { echo "$p"; return; }
	done
}
etcd_port=$(free_port)
etcd_peer_port=$(free_port)
api_port=$(free_port)
kcm_port=$(free_port)
sched_port=$(free_port)
kubelet_port=$(free_port)
kubelet_healthz_port=$(free_port)

kubeconfig() {
	cat >"$state/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ci
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $pki/$1.crt
    client-key: $pki/$1.key
contexts:
- name: ci
  context: {cluster: ci, user: $1}
current-context: ci
EOF
}
for u in admin controller-manager scheduler node; do kubeconfig "$u"; done

# ----------------------------------------------------------------- cluster
# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
	local what=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		check_components
		sleep 0.2
	done
	die "$what: not within $secs s"
}
log "starting etcd, kube-apiserver, containerd, controller-manager, scheduler, kubelet"
start etcd etcd --name ci --data-dir "$state/etcd" \
	--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
	--listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
	--initial-cluster "ci=http://127.0.0.1:$etcd_peer_port" --log-level warn
start kube-apiserver "$bin/kube-apiserver" \
	--etcd-servers "http://127.0.0.1:$etcd_port" \
	--bind-address 127.0.0.1 --secure-port "$api_port" --advertise-address "$node_ip" \
	--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
	--client-ca-file "$pki/ca.crt" \
	--service-cluster-ip-range "$service_cidr" \
	--service-account-issuer https://kubernetes.default.svc \
	--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
	--authorization-mode Node,RBAC \
	--enable-admission-plugins NodeRestriction,PodSecurity \
	--kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
	--kubelet-client-key "$pki/apiserver-kubelet-client.key" \
	--kubelet-certificate-authority "$pki/ca.crt" \
	--kubelet-preferred-address-types InternalIP,Hostname \
	--allow-privileged=true \
	--profiling=false

# The pod network: a bridge this script owns, with the node's address on it
# (the kubelet listens there), and CNI bridge + host-local on top of it. Not
# a gateway: pods get no default route, and the plugin leaves the host's
# ip_forward alone (a gateway bridge turns it on), so nothing can be routed
# off the machine; the host and the pods share the /24.
ip link add "$bridge" type bridge
ip addr add "$node_ip/24" dev "$bridge"
ip link set "$bridge" up
mkdir -p "$state/cni/net.d" "$state/cni/ipam"
cat >"$state/cni/net.d/10-pollreload-ci.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "pollreload-ci",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": false,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$state/cni/ipam",
        "ranges": [[{"subnet": "$pod_cidr", "rangeStart": "${node_ip%.1}.2"}]]
      }
    },
    {"type": "loopback"}
  ]
}
EOF

mkdir -p "$state/containerd"
cat >"$state/containerd/config.toml" <<EOF
version = 2
root = "$state/containerd/root"
state = "$state/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$state/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj below the
  # caller's, and fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$state/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
EOF
start containerd containerd --config "$state/containerd/config.toml"
wait_for "containerd answering on $sock" 30 ctr -a "$sock" version
for t in "$img"/*.tar; do
	ctr -a "$sock" -n k8s.io images import "$t" >/dev/null
done
ctr -a "$sock" -n k8s.io images ls -q | grep -v '^sha256:' | sed 's/^/  node image: /'

wait_for "kube-apiserver /readyz" 90 "$kubectl" get --raw /readyz
start kube-controller-manager "$bin/kube-controller-manager" \
	--kubeconfig "$state/controller-manager.kubeconfig" \
	--authentication-kubeconfig "$state/controller-manager.kubeconfig" \
	--authorization-kubeconfig "$state/controller-manager.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
	--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
	--use-service-account-credentials=true --profiling=false
start kube-scheduler "$bin/kube-scheduler" \
	--kubeconfig "$state/scheduler.kubeconfig" \
	--authentication-kubeconfig "$state/scheduler.kubeconfig" \
	--authorization-kubeconfig "$state/scheduler.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false --profiling=false

mkdir -p "$state/kubelet" "$state/pod-logs"
cat >"$state/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$sock
# This host mounts cgroup v1 hierarchies (hybrid) and has no systemd.
cgroupDriver: cgroupfs
failSwapOn: false
# Volume updates within about a second instead of a minute.
syncFrequency: 1s
configMapAndSecretChangeDetectionStrategy: Watch
address: $node_ip
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz_port
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: Webhook
podLogsDir: $state/pod-logs
resolvConf: ""
# The imported images cannot be pulled again: never collect them, and never
# evict pods for a full disk on a shared CI machine.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
EOF
start kubelet "$bin/kubelet" --config "$state/kubelet.yaml" --kubeconfig "$state/node.kubeconfig" \
	--root-dir "$state/kubelet" --hostname-override "$node" --node-ip "$node_ip"
wait_for "node $node registered" 60 "$kubectl" get node "$node"
"$kubectl" wait --for=condition=Ready "node/$node" --timeout=60s >/dev/null ||
	die "node $node not Ready: $("$kubectl" get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}')"
echo "node: $("$kubectl" get node "$node" -o jsonpath='{.status.nodeInfo.kubeletVersion}, {.status.nodeInfo.containerRuntimeVersion}, {.status.nodeInfo.kernelVersion}, {.status.addresses[0].address}')"
part "cluster start"

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

# Pods of scenarios 3, 5 and 6 start while scenario 1 runs. They live in a
# namespace of their own, also "restricted", without a Service named pollreload.
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

scenario "1 helm install, restricted" s1_helm
scenario "2 configmap reload (chart)" s2_configmap
scenario "3 secret reload" s3_secret
scenario "4 native sidecar" s4_native
scenario "5 wrapper as PID 1" s5_wrapper
scenario "6 pollreload check" s6_check

rss=()
total_kb=0
for i in "${!names[@]}"; do
	kb=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/${pids[$i]}/status" 2>/dev/null || echo 0)
	total_kb=$((total_kb + ${kb:-0}))
	rss+=("${names[$i]} $((${kb:-0} / 1024)) MB")
done
echo "cluster: memory (RSS) after the scenarios: $(printf '%s, ' "${rss[@]}")total $((total_kb / 1024)) MB"

if [[ -n ${CLUSTER_HOLD:-} ]]; then
	log "holding the cluster for $CLUSTER_HOLD s: KUBECONFIG=$KUBECONFIG $kubectl ..."
	sleep "$CLUSTER_HOLD"
fi
if ((${#failed[@]} > 0)); then
	echo "cluster: ${#failed[@]} of 6 scenarios failed: ${failed[*]}"
	exit 1
fi
echo "cluster: all scenarios passed"
