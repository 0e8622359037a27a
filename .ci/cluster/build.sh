# shellcheck shell=bash
# .ci/cluster/build.sh: the Debian packages and helm the node needs, the run's
# lock, and the Kubernetes binaries built from the scratch module beside this
# file (go.mod, go.sum, pause/), cached by version and build inputs in
# $cache. Sourced by .ci/cluster.sh.

# ---------------------------------------------------------------- packages
install_missing containerd=/usr/bin/containerd runc=/usr/sbin/runc etcd-server=/usr/bin/etcd \
	containernetworking-plugins=/usr/lib/cni/bridge iptables=/usr/sbin/iptables \
	iproute2=/usr/sbin/ip openssl=/usr/bin/openssl buildah=/usr/bin/buildah \
	busybox-static=/bin/busybox nginx-light=/usr/sbin/nginx curl=/usr/bin/curl jq=/usr/bin/jq \
	prometheus=/usr/bin/prometheus
install_helm

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
