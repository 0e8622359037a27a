#!/usr/bin/env bash
# .ci/image.sh builds the project's Dockerfile with buildah, checks the image
# (size under 20 MB, non-root user) and runs it: --version, a configuration
# error, then a short watch of two mounted directories (one laid out like a
# kubelet ConfigMap volume, one plain) whose changes must each end in exactly
# one HTTP reload request to a listener on the host.
#
# No registry is reachable here, so the base image the Dockerfile's build stage
# names is made locally first, under that exact name, by .ci/go-base.sh: the
# host's Go toolchain, busybox (for the shell RUN needs), the CA bundle and a
# module cache filled from the host (the build runs with GOPROXY=off). The
# final stage is scratch, which needs no image. The Dockerfile itself is
# unchanged and builds the same way against the real images elsewhere.
#
# With IMAGE_ARCHIVE=FILE.oci.tar and EXPECT_VERSION=VERSION it builds nothing:
# it checks and runs the host platform's image of a release instead
# (.ci/release.sh does).
#
# Needs: Go at /usr/local/go, root, apt-get (installs buildah, busybox-static,
# ca-certificates, python3 and skopeo when missing).
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

image=${IMAGE:-localhost/pollreload:ci}
# 20 MB: the authenticated HTTP client (prometheus/common config: oauth2, jwt,
# x/net) took the image from 10 to 13.3 MB, and the PostgreSQL driver (pgx, for
# the postgresql profile's verdict) to 17.8 MB; the limit catches the next jump.
limit_bytes=$((20 * 1000 * 1000))
start=$(date +%s)

. .ci/lib.sh

# fail prints pollreload's log, if there is one yet, and the reason, and exits.
fail() {
	if [[ -s ${work:-}/daemon.log ]]; then
		echo "--- pollreload's log:" >&2
		cat "$work/daemon.log" >&2
	fi
	echo "image.sh: $*" >&2
	exit 1
}

install_missing buildah=/usr/bin/buildah busybox-static=/bin/busybox \
	ca-certificates=/etc/ssl/certs/ca-certificates.crt python3=/usr/bin/python3 \
	skopeo=/usr/bin/skopeo

work=$(mktemp -d)
containers=()
listener_pid=
daemon_pid=
cleanup() {
	local pid
	for pid in $daemon_pid $listener_pid; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	done
	local c
	for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# Drop what an earlier run left, so the store does not fill with old layers.
buildah rmi "$image" >/dev/null 2>&1 || true
if [[ -n ${IMAGE_ARCHIVE:-} ]]; then
	# A release's image, as users load it: the host's platform out of the
	# archive's manifest list.
	version=${EXPECT_VERSION:?IMAGE_ARCHIVE needs EXPECT_VERSION}
	log "loading $image from $IMAGE_ARCHIVE"
	skopeo copy --quiet "oci-archive:$IMAGE_ARCHIVE" "containers-storage:$image"
else
	log "making stand-in for the Dockerfile's build stage"
	bash .ci/go-base.sh
	version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
	commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
	commit_date=$(TZ=UTC git show -s --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ HEAD 2>/dev/null || echo unknown)
	log "building $image (version $version)"
	build_start=$(date +%s)
	# buildah before 1.29 does not set BUILDPLATFORM itself, nor TARGETOS and
	# TARGETARCH without --platform.
	platform=linux/$(go env GOHOSTARCH)
	buildah build --quiet --pull=never --isolation chroot \
		--platform "$platform" --build-arg "BUILDPLATFORM=$platform" \
		--build-arg "VERSION=$version" --build-arg "COMMIT=$commit" \
		--build-arg "COMMIT_DATE=$commit_date" --build-arg "CREATED=$commit_date" \
		-t "$image" .
	echo "build time: $(($(date +%s) - build_start)) s"
fi

ctr=$(buildah from --pull=never "$image")
containers+=("$ctr")
size=$(du -sb "$(buildah mount "$ctr")" | cut -f1)
buildah umount "$ctr" >/dev/null
echo "image size: $size bytes (limit 20 MB)"
((size <= limit_bytes)) || fail "image is $size bytes, over the $limit_bytes byte limit"

user=$(buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$image")
entrypoint=$(buildah inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' "$image")
echo "image user: $user, entrypoint: $entrypoint"
[[ $user == 65532:65532 ]] || fail "image user is '$user'; want 65532:65532"

log "pollreload --version"
out=$(timeout 60 buildah run --isolation chroot "$ctr" -- /pollreload --version)
echo "$out"
[[ $out == *"$version"* ]] || fail "--version printed '$out'; want it to contain $version"

log "pollreload without configuration"
# A configuration error must reach the container log as one line, exit code 2.
set +e
out=$(timeout 60 buildah run --isolation chroot "$ctr" -- /pollreload 2>&1)
code=$?
set -e
echo "$out" | grep '^pollreload:' || true
((code == 2)) && [[ $out == *CONFIG_DIR* ]] || fail "got exit $code and '$out'; want exit 2 naming CONFIG_DIR"

log "watching mounted directories"
# Two roots: one laid out as the kubelet lays out a ConfigMap volume (files
# behind a ..data symlink that is swapped atomically), one a plain tree.
cfg=$work/config
mkdir -p "$cfg/kube/..2026_01_01" "$cfg/plain"
echo 'worker_processes 1;' >"$cfg/kube/..2026_01_01/app.conf"
ln -s ..2026_01_01 "$cfg/kube/..data"
ln -s ..data/app.conf "$cfg/kube/app.conf"
echo 'listen 8080;' >"$cfg/plain/site.conf"
chmod -R a+rX "$cfg"
hits=$work/hits
: >"$hits"
# A reload endpoint on loopback; chroot isolation shares the host's network.
python3 - "$hits" "$work/port" <<'EOF' &
import http.server, os, sys

class Reload(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        with open(sys.argv[1], "a") as f:
            f.write(f"{self.command} {self.path}\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Reload)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
EOF
listener_pid=$!
for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
port=$(cat "$work/port")

buildah run --isolation chroot -v "$cfg:/config:ro" \
	--env CONFIG_DIR=/config/kube,/config/plain \
	--env "RELOAD_URL=http://127.0.0.1:$port/-/reload" \
	--env POLL_INTERVAL=200ms \
	--env SETTLE_TIME=500ms \
	--env METRICS_ADDR= \
	"$ctr" -- /pollreload >"$work/daemon.log" 2>&1 &
daemon_pid=$!

# Let a few polls pass: unchanged directories must not cause a reload.
sleep 2
[[ -s $hits ]] && fail "reload requested before any change: $(cat "$hits")"
kill -0 "$daemon_pid" 2>/dev/null || fail "pollreload exited early"

# wait_for_reload waits until the listener has seen $1 requests in all and
# prints how long after the change (at time $2) the last one came.
wait_for_reload() {
	local want=$1 changed=$2 what=$3
	for _ in $(seq 150); do
		(($(wc -l <"$hits") >= want)) && break
		sleep 0.1
	done
	(($(wc -l <"$hits") >= want)) || fail "no reload request within 15 s of the $what change"
	printf 'reload after the %s change: %s, %.1f s later\n' "$what" "$(sed -n "${want}p" "$hits")" \
		"$(awk -v a="$changed" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
}

# The kubelet's update: a new timestamped directory, then ..data renamed over.
mkdir "$cfg/kube/..2026_01_02"
echo 'worker_processes 2;' >"$cfg/kube/..2026_01_02/app.conf"
chmod -R a+rX "$cfg/kube/..2026_01_02"
ln -s ..2026_01_02 "$cfg/kube/..data_tmp"
changed=$(date +%s.%N)
mv -T "$cfg/kube/..data_tmp" "$cfg/kube/..data"
wait_for_reload 1 "$changed" kubelet-style

changed=$(date +%s.%N)
echo 'listen 8081;' >"$cfg/plain/site.conf"
wait_for_reload 2 "$changed" plain-tree

kill "$daemon_pid" 2>/dev/null || true
wait "$daemon_pid" 2>/dev/null || true
(($(wc -l <"$hits") == 2)) || fail "got $(wc -l <"$hits") reload requests; want 2"

echo "image.sh: ok in $(($(date +%s) - start)) s"
