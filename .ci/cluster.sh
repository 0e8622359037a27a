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
#   7. the chart's wrapper mode in a "restricted" namespace: an init container
#      copies pollreload into an emptyDir, nginx runs as its child, `nginx -t`
#      (RELOAD_CHECK_COMMAND) refuses a bad ConfigMap before any signal, and
#      PollreloadReloadFailing's expression is true in a Prometheus scraping it.
# Then everything is torn down (on every exit, by trap) and what is left on
# the machine is printed: nothing.
#
# The parts, sourced in this order (.ci/lib.sh holds what other .ci/ scripts
# share too):
#   .ci/cluster/common.sh     timing, die, background components, wait_for
#   .ci/cluster/build.sh      packages, the run's lock, Kubernetes binaries
#   .ci/cluster/teardown.sh   state directory, what existed before, teardown
#   .ci/cluster/images.sh     the node's images, built with buildah
#   .ci/cluster/bringup.sh    certificates, control plane, network, kubelet
#   .ci/cluster/checks.sh     what the scenarios check with; `scenario`
#   .ci/cluster/scenarios.sh  the scenarios, one function each
#   .ci/cluster/wrapped.sh    scenario 7 and the Prometheus it queries
#
# The Kubernetes binaries are cached by version and build inputs in
# /var/cache/pollreload-cluster (CLUSTER_CACHE), so only the first run builds
# them (about 6 minutes on 2 cores). Traffic stays on 127.0.0.1 and the pod
# network this script creates (10.244.77.0/24 on bridge prci0); IP forwarding
# is not enabled, so nothing is routed off the machine.
#
# Needs: root, Go at /usr/local/go; installs containerd, runc, etcd-server,
# containernetworking-plugins, iptables, iproute2, openssl, buildah,
# busybox-static, nginx-light, curl, jq and prometheus when missing, and helm like
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

. .ci/lib.sh
. .ci/cluster/common.sh

[[ $(id -u) == 0 ]] || die "must run as root (it starts containerd and the kubelet)"

. .ci/cluster/build.sh
. .ci/cluster/teardown.sh
. .ci/cluster/images.sh
. .ci/cluster/bringup.sh
. .ci/cluster/checks.sh
. .ci/cluster/scenarios.sh
. .ci/cluster/wrapped.sh

start_scenario_pods
start_prometheus

scenario "1 helm install, restricted" s1_helm
scenario "2 configmap reload (chart)" s2_configmap
scenario "3 secret reload" s3_secret
scenario "4 native sidecar" s4_native
scenario "5 wrapper as PID 1" s5_wrapper
scenario "6 pollreload check" s6_check
scenario "7 wrapper in a pod, nginx -t" s7_wrapped

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
	echo "cluster: ${#failed[@]} of 7 scenarios failed: ${failed[*]}"
	exit 1
fi
echo "cluster: all scenarios passed"
