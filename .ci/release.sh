#!/usr/bin/env bash
# .ci/release.sh checks release/build.sh: it builds the same commit twice,
# from two clones in different directories, one after the other (so at
# different times), the second with an empty Go build cache, and requires
# byte-identical artifacts. Then it checks the first build's artifacts:
# exactly the named files and a SHA256SUMS that verifies; each binary's ELF
# machine and static linking; the arm64 binary under qemu-user (--version, and
# `hash` on a fixture, whose digests must equal the amd64 binary's and
# xxhsum's); the amd64 image from the OCI archive, run as .ci/image.sh runs
# images; the chart; the SBOM against the module graph; and the README's
# install steps against a registry on 127.0.0.1 (skopeo copy --all, helm
# push, helm pull).
#
# Needs: Go at /usr/local/go, root, apt-get. Installs what is missing:
# helm and cyclonedx-gomod with go install, and the Debian packages below.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
export PATH=/usr/local/go/bin:$PATH
export PATH=$PATH:$(go env GOPATH)/bin:/usr/sbin
start=$(date +%s)

. .ci/lib.sh
fail() {
	echo "release.sh: $*" >&2
	exit 1
}

had_registry=false
[[ -e /usr/bin/docker-registry ]] && had_registry=true
install_missing buildah=/usr/bin/buildah busybox-static=/bin/busybox skopeo=/usr/bin/skopeo jq=/usr/bin/jq \
	qemu-user-static=/usr/bin/qemu-aarch64-static xxhash=/usr/bin/xxhsum python3=/usr/bin/python3 \
	docker-registry=/usr/bin/docker-registry ca-certificates=/etc/ssl/certs/ca-certificates.crt
# Debian starts the registry it installs; this script runs its own.
$had_registry || systemctl stop docker-registry 2>/dev/null || service docker-registry stop 2>/dev/null || true
install_helm
command -v cyclonedx-gomod >/dev/null ||
	go install github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0

work=$(mktemp -d)
registry_pid=
image=localhost/pollreload-release-check:$$
cleanup() {
	if [[ -n $registry_pid ]]; then
		kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null || true
	fi
	buildah rmi "$image" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# The newest version in CHANGELOG.md: build.sh needs its entry.
version=$(sed -n 's/^## \[\([0-9][^]]*\)\].*/\1/p' CHANGELOG.md | head -1)
[[ -n $version ]] || fail "CHANGELOG.md has no released version entry"
commit=$(git rev-parse HEAD)
log "stand-in for the Dockerfile's build stage"
bash .ci/go-base.sh >/dev/null

# build N [ENV...] clones HEAD into its own directory and builds it there.
build() {
	local n=$1
	shift
	git clone --quiet --no-checkout "$repo" "$work/clone$n"
	git -C "$work/clone$n" checkout --quiet "$commit"
	log "build $n: $work/clone$n -> $work/out$n, at $(date -u +%H:%M:%S)"
	local t=$(date +%s)
	env "$@" PULL=never bash "$work/clone$n/release/build.sh" "$version" "$work/out$n" >"$work/build$n.log" 2>&1 ||
		{ cat "$work/build$n.log"; fail "build $n failed"; }
	echo "build $n: $(($(date +%s) - t)) s"
}
build 1
sleep 1 # the second build starts at least a second later in any case
build 2 GOCACHE="$work/gocache2"
out=$work/out1

log "reproducibility: build 1 and build 2"
digests() { grep -E '^(binary|image)' "$work/build$1.log"; }
paste -d'|' <(digests 1) <(digests 2) | awk -F'|' '{ printf "%-90s | %s\n", $1, $2 }'
[[ $(digests 1) == $(digests 2) ]] || fail "the binaries or image digests differ between the builds"
diff "$work/out1/SHA256SUMS" "$work/out2/SHA256SUMS" || fail "the artifacts differ between the builds"
echo "SHA256SUMS identical: every artifact byte-identical"

log "artifacts"
want="SHA256SUMS
pollreload-$version.tgz
pollreload_${version}_image.oci.tar
pollreload_${version}_linux_amd64.tar.gz
pollreload_${version}_linux_arm64.tar.gz
pollreload_${version}_sbom.cdx.json"
got=$(cd "$out" && ls -A | LC_ALL=C sort)
[[ $got == "$want" ]] || fail "OUTDIR holds:
$got
want exactly:
$want"
(cd "$out" && for f in $got; do printf '%10d  %s  %s\n' "$(stat -c %s "$f")" "$(sha256sum <"$f" | cut -d' ' -f1)" "$f"; done)
(cd "$out" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not verify"

log "binaries"
for arch in amd64 arm64; do
	mkdir "$work/$arch"
	tar -xzf "$out/pollreload_${version}_linux_$arch.tar.gz" -C "$work/$arch"
	[[ $(cd "$work/$arch" && ls | tr '\n' ' ') == "LICENSE README.md pollreload " ]] ||
		fail "the $arch tarball holds $(ls "$work/$arch"); want LICENSE README.md pollreload"
	cmp -s "$work/$arch/LICENSE" LICENSE || fail "the $arch tarball's LICENSE is not the repository's"
done
# elf_info prints an ELF file's machine and whether it asks for an
# interpreter or dynamic linking.
elf_info() {
	python3 - "$1" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    data = f.read()
assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not a 64-bit little-endian ELF file"
machine = struct.unpack_from("<H", data, 18)[0]
phoff, = struct.unpack_from("<Q", data, 32)
phentsize, phnum = struct.unpack_from("<HH", data, 54)
types = {struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)}
names = {62: "x86-64", 183: "aarch64"}
linking = "dynamic" if types & {2, 3} else "static"  # PT_DYNAMIC, PT_INTERP
print(names.get(machine, f"machine {machine}"), linking)
PY
}
declare -A want_machine=([amd64]=x86-64 [arm64]=aarch64)
for arch in amd64 arm64; do
	info=$(elf_info "$work/$arch/pollreload")
	echo "linux/$arch: ELF $info"
	[[ $info == "${want_machine[$arch]} static" ]] || fail "the $arch binary is $info; want ${want_machine[$arch]} static"
done

commit_date=$(date -u -d "@$(git show -s --format=%ct "$commit")" +%Y-%m-%dT%H:%M:%SZ)
amd64_version=$("$work/amd64/pollreload" --version)
arm64_version=$(qemu-aarch64-static "$work/arm64/pollreload" --version)
echo "amd64:                      $amd64_version"
echo "arm64 (qemu-aarch64-static): $arm64_version"
for arch in amd64 arm64; do
	line=${amd64_version}
	[[ $arch == arm64 ]] && line=$arm64_version
	[[ $line == "pollreload $version (commit $commit, $commit_date, go"*" linux/$arch)" ]] ||
		fail "$arch --version printed '$line'; want version $version, commit $commit, $commit_date, the Go version and linux/$arch"
done

# A fixture with files around xxhash's block sizes (32 bytes, and a large
# one), a nested directory and a kubelet-style volume.
fx=$work/fixture
mkdir -p "$fx/plain/conf.d" "$fx/kube/..2026_01_01"
printf 'x' >"$fx/plain/one-byte"
printf '%031d' 0 >"$fx/plain/31-bytes"
printf '%032d' 0 >"$fx/plain/conf.d/32-bytes"
head -c 1048579 /dev/zero | tr '\0' 'a' >"$fx/plain/conf.d/1MiB-plus-3"
echo 'worker_processes 2;' >"$fx/kube/..2026_01_01/app.conf"
ln -s ..2026_01_01 "$fx/kube/..data"
ln -s ..data/app.conf "$fx/kube/app.conf"
amd64_hash=$("$work/amd64/pollreload" hash "$fx/plain" "$fx/kube")
arm64_hash=$(qemu-aarch64-static "$work/arm64/pollreload" hash "$fx/plain" "$fx/kube")
echo "arm64 pollreload hash (qemu):"
echo "$arm64_hash"
[[ $arm64_hash == "$amd64_hash" ]] || fail "hash output differs between arm64 and amd64:
$amd64_hash"
for f in one-byte 31-bytes conf.d/32-bytes conf.d/1MiB-plus-3; do
	want_digest=$(xxhsum -H64 "$fx/plain/$f" 2>/dev/null | cut -d' ' -f1)
	grep -qE "^  $want_digest +[0-9]+  $f\$" <<<"$arm64_hash" ||
		fail "arm64 hash of $f is not xxhsum's $want_digest"
done
echo "arm64 digests equal amd64's and xxhsum -H64's"

log "images"
oci=$work/oci
mkdir "$oci"
tar -xf "$out/pollreload_${version}_image.oci.tar" -C "$oci"
index=$(jq -r '.manifests[0].digest' "$oci/index.json")
blob() { echo "$oci/blobs/sha256/${1#sha256:}"; }
platforms=$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | sort | join(" ")' "$(blob "$index")")
[[ $platforms == "linux/amd64 linux/arm64" ]] || fail "the manifest list has $platforms; want linux/amd64 linux/arm64"
for arch in amd64 arm64; do
	manifest=$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' "$(blob "$index")")
	config=$(blob "$(jq -r .config.digest "$(blob "$manifest")")")
	jq -e --arg a "$arch" --arg v "$version" --arg c "$commit" --arg d "$commit_date" '
		.architecture == $a and .created == $d and .config.User == "65532:65532"
		and .config.Labels["org.opencontainers.image.version"] == $v
		and .config.Labels["org.opencontainers.image.revision"] == $c
		and .config.Labels["org.opencontainers.image.created"] == $d
		and .config.Labels["org.opencontainers.image.licenses"] == "Apache-2.0"
		and (.config.Labels["org.opencontainers.image.source"] | startswith("https://"))
		and ([.history[].created] | unique) == [$d]' "$config" >/dev/null ||
		fail "the linux/$arch image config is not as expected: $(jq -c '{architecture, created, user: .config.User, labels: .config.Labels}' "$config")"
	echo "linux/$arch: $manifest, created $commit_date, labels and user as expected"
done
log "running the amd64 image (.ci/image.sh on the release archive)"
IMAGE=$image IMAGE_ARCHIVE="$out/pollreload_${version}_image.oci.tar" EXPECT_VERSION=$version bash .ci/image.sh

log "chart"
pkg=$out/pollreload-$version.tgz
helm lint --strict --quiet "$pkg"
helm show chart "$pkg" >"$work/chart.yaml"
grep -qx "version: $version" "$work/chart.yaml" && grep -qx "appVersion: $version" "$work/chart.yaml" ||
	fail "the packaged chart's version/appVersion are not $version: $(cat "$work/chart.yaml")"
rendered=$(helm template ci "$pkg" | grep -c "image: \"ghcr.io/pollreload/pollreload:$version\"" || true)
((rendered == 1)) || fail "the packaged chart renders the sidecar image $rendered times with tag $version; want once"
pinned=$(helm template ci "$pkg" --set "sidecar.image.digest=$index" | grep -c "image: \"ghcr.io/pollreload/pollreload@$index\"" || true)
((pinned == 1)) || fail "with sidecar.image.digest set, the sidecar image is not repository@digest"
helm show chart "$pkg" | awk '/^  artifacthub.io\/changes: \|$/ { on = 1; next } on && /^    / { print; next } { on = 0 }' >"$work/changes"
bash release/chart-changes.sh "$version" | diff - "$work/changes" || fail "the chart's artifacthub.io/changes is not CHANGELOG.md's entry for $version"
echo "pollreload-$version.tgz: version and appVersion $version, image tag $version, digest wins when set, changes from CHANGELOG.md"

log "sbom"
sbom=$out/pollreload_${version}_sbom.cdx.json
jq -r '.components[] | select(.name != "std") | "\(.name) \(.version)"' "$sbom" | LC_ALL=C sort >"$work/sbom-modules"
(cd "$work/clone1" && go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}' ./...) | grep . | LC_ALL=C sort -u >"$work/go-modules"
diff "$work/go-modules" "$work/sbom-modules" || fail "the SBOM's modules (right) are not the build's module graph (left)"
jq -e --arg v "v$version" --arg g "$(go env GOVERSION)" '
	.bomFormat == "CycloneDX" and .metadata.component.version == $v
	and ([.components[] | select(.name == "std") | .version] == [$g])' "$sbom" >/dev/null ||
	fail "the SBOM's main component version or std version is wrong"
echo "sbom: $(jq '.components | length' "$sbom") components ($(wc -l <"$work/sbom-modules") modules, the same as go list -deps, and std $(go env GOVERSION)), spec $(jq -r .specVersion "$sbom")"

log "install steps of the README against a registry on 127.0.0.1"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
log:
  level: error
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
	sleep 0.1
done
reg=127.0.0.1:$port
skopeo copy --quiet --all --dest-tls-verify=false "oci-archive:$out/pollreload_${version}_image.oci.tar" "docker://$reg/pollreload:$version"
pushed=$(skopeo inspect --raw --tls-verify=false "docker://$reg/pollreload:$version" | sha256sum | cut -d' ' -f1)
[[ sha256:$pushed == "$index" ]] || fail "the pushed index is sha256:$pushed; want the archive's $index"
echo "skopeo copy --all: $reg/pollreload:$version is $index, as in the archive"
export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data
mkdir "$work/pulled"
helm push "$pkg" "oci://$reg/charts" --plain-http >/dev/null 2>&1 || fail "helm push failed"
helm pull "oci://$reg/charts/pollreload" --version "$version" --plain-http -d "$work/pulled" >/dev/null 2>&1 ||
	fail "helm pull of the pushed chart failed"
cmp -s "$pkg" "$work/pulled/pollreload-$version.tgz" || fail "the chart pulled back differs from the one pushed"
echo "helm push + helm pull: oci://$reg/charts/pollreload:$version comes back byte-identical"

echo "release.sh: ok in $(($(date +%s) - start)) s"
