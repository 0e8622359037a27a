# shellcheck shell=bash
# .ci/cluster/bringup.sh: certificates and kubeconfigs, then etcd,
# kube-apiserver (PodSecurity admission), the pod network, containerd (with
# the images imported), the controller-manager, the scheduler and the
# kubelet, until the node is Ready. Sourced by .ci/cluster.sh.

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
