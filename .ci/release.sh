#!/usr/bin/env bash
# .ci/release.sh checks release/build.sh and release/sign.sh: it builds the
# same commit twice, from two clones in different directories, one after the
# other (so at different times), the second with an empty Go build cache, and
# requires byte-identical artifacts for all six platforms. Then it checks the
# first build's artifacts: exactly the named files and a SHA256SUMS that
# verifies; each binary's ELF machine and static linking; every non-amd64
# binary under qemu-user (--version, and `hash` on a fixture, whose digests
# must equal the amd64 binary's and xxhsum's); the image index's six
# platforms; the amd64 image from the OCI archive, run as .ci/image.sh runs
# images; the chart; the SBOM against the module graph; the provenance
# against the files and the index. Against a registry on 127.0.0.1: the
# README's install steps (skopeo copy --all, helm push, helm pull), then
# release/sign.sh with a key pair made for the run, verified as a cluster's
# admission policy would (cosign verify, verify-attestation --type cyclonedx
# and slsaprovenance1), and tampered copies that must fail: a layer with one
# byte changed pushed over the tag, the signature copied onto that digest, a
# tarball with one byte changed, and another key.
#
# Needs: Go at /usr/local/go, root, apt-get. Installs what is missing:
# helm, cyclonedx-gomod and cosign with go install (once per machine: they
# stay in GOPATH/bin, and cosign is rebuilt only when release/sign.sh pins
# another version), and the Debian packages below.
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
# The platforms and their tarballs' name parts, in the index's order.
platforms=(linux/amd64 linux/arm64 linux/arm/v7 linux/ppc64le linux/s390x linux/riscv64)
declare -A suffix=([linux/amd64]=amd64 [linux/arm64]=arm64 [linux/arm/v7]=armv7
	[linux/ppc64le]=ppc64le [linux/s390x]=s390x [linux/riscv64]=riscv64)
want="SHA256SUMS
pollreload-$version.tgz
pollreload_${version}_image.oci.tar
$(for p in "${platforms[@]}"; do echo "pollreload_${version}_linux_${suffix[$p]}.tar.gz"; done | LC_ALL=C sort)
pollreload_${version}_provenance.intoto.json
pollreload_${version}_sbom.cdx.json"
got=$(cd "$out" && ls -A | LC_ALL=C sort)
[[ $got == "$want" ]] || fail "OUTDIR holds:
$got
want exactly:
$want"
(cd "$out" && for f in $got; do printf '%10d  %s  %s\n' "$(stat -c %s "$f")" "$(sha256sum <"$f" | cut -d' ' -f1)" "$f"; done)
(cd "$out" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not verify"

log "binaries"
for p in "${platforms[@]}"; do
	a=${suffix[$p]}
	mkdir "$work/$a"
	tar -xzf "$out/pollreload_${version}_linux_$a.tar.gz" -C "$work/$a"
	[[ $(cd "$work/$a" && ls | tr '\n' ' ') == "LICENSE README.md pollreload " ]] ||
		fail "the $a tarball holds $(ls "$work/$a"); want LICENSE README.md pollreload"
	cmp -s "$work/$a/LICENSE" LICENSE || fail "the $a tarball's LICENSE is not the repository's"
done
# elf_info prints an ELF file's class, byte order and machine, and whether it
# asks for an interpreter or dynamic linking.
elf_info() {
	python3 - "$1" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    data = f.read()
assert data[:4] == b"\x7fELF", "not an ELF file"
bits = {1: 32, 2: 64}[data[4]]
order = {1: "<", 2: ">"}[data[5]]
machine = struct.unpack_from(order + "H", data, 18)[0]
if bits == 64:
    phoff, = struct.unpack_from(order + "Q", data, 32)
    phentsize, phnum = struct.unpack_from(order + "HH", data, 54)
else:
    phoff, = struct.unpack_from(order + "I", data, 28)
    phentsize, phnum = struct.unpack_from(order + "HH", data, 42)
types = {struct.unpack_from(order + "I", data, phoff + i * phentsize)[0] for i in range(phnum)}
names = {62: "x86-64", 183: "aarch64", 40: "ARM", 21: "PowerPC64", 22: "S/390", 243: "RISC-V"}
linking = "dynamic" if types & {2, 3} else "static"  # PT_DYNAMIC, PT_INTERP
print(f"{bits}-bit {'LSB' if order == '<' else 'MSB'} {names.get(machine, f'machine {machine}')} {linking}")
PY
}
declare -A want_elf=([amd64]="64-bit LSB x86-64" [arm64]="64-bit LSB aarch64" [armv7]="32-bit LSB ARM"
	[ppc64le]="64-bit LSB PowerPC64" [s390x]="64-bit MSB S/390" [riscv64]="64-bit LSB RISC-V")
for p in "${platforms[@]}"; do
	a=${suffix[$p]}
	info=$(elf_info "$work/$a/pollreload")
	printf '%-14s ELF %s\n' "$p:" "$info"
	[[ $info == "${want_elf[$a]} static" ]] || fail "the $p binary is $info; want ${want_elf[$a]} static"
done

# run PLATFORM ARGS... runs that platform's binary, under qemu-user unless
# it is amd64.
declare -A qemu=([arm64]=qemu-aarch64-static [armv7]=qemu-arm-static [ppc64le]=qemu-ppc64le-static
	[s390x]=qemu-s390x-static [riscv64]=qemu-riscv64-static)
run() {
	local a=${suffix[$1]}
	shift
	if [[ $a == amd64 ]]; then
		"$work/$a/pollreload" "$@"
	else
		"${qemu[$a]}" "$work/$a/pollreload" "$@"
	fi
}
commit_date=$(date -u -d "@$(git show -s --format=%ct "$commit")" +%Y-%m-%dT%H:%M:%SZ)
for p in "${platforms[@]}"; do
	line=$(run "$p" --version)
	a=${suffix[$p]}
	printf '%-34s %s\n' "$p (${qemu[$a]:-native}):" "$line"
	goarch=${p#linux/}
	goarch=${goarch%/v7}
	[[ $line == "pollreload $version (commit $commit, $commit_date, go"*" linux/$goarch)" ]] ||
		fail "$p --version printed '$line'; want version $version, commit $commit, $commit_date, the Go version and linux/$goarch"
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
amd64_hash=$(run linux/amd64 hash "$fx/plain" "$fx/kube")
echo "amd64 pollreload hash:"
echo "$amd64_hash"
for f in one-byte 31-bytes conf.d/32-bytes conf.d/1MiB-plus-3; do
	want_digest=$(xxhsum -H64 "$fx/plain/$f" 2>/dev/null | cut -d' ' -f1)
	grep -qE "^  $want_digest +[0-9]+  $f\$" <<<"$amd64_hash" ||
		fail "amd64 hash of $f is not xxhsum's $want_digest"
done
for p in "${platforms[@]:1}"; do
	got_hash=$(run "$p" hash "$fx/plain" "$fx/kube")
	[[ $got_hash == "$amd64_hash" ]] || fail "hash output differs between $p and amd64:
$got_hash"
	echo "$p (qemu): hash output identical to amd64's"
done
echo "every platform's digests equal amd64's and xxhsum -H64's"

log "images"
oci=$work/oci
mkdir "$oci"
tar -xf "$out/pollreload_${version}_image.oci.tar" -C "$oci"
index=$(jq -r '.manifests[0].digest' "$oci/index.json")
blob() { echo "$oci/blobs/sha256/${1#sha256:}"; }
# plat is jq's name of a platform, os/architecture[/variant].
plat='"\(.os)/\(.architecture)\(.variant // "" | if . == "" then "" else "/" + . end)"'
got=$(jq -r "[.manifests[].platform | $plat] | join(\" \")" "$(blob "$index")")
[[ $got == "${platforms[*]}" ]] || fail "the image index has $got; want ${platforms[*]}"
for p in "${platforms[@]}"; do
	manifest=$(jq -r --arg p "$p" ".manifests[] | select(.platform | $plat == \$p) | .digest" "$(blob "$index")")
	config=$(blob "$(jq -r .config.digest "$(blob "$manifest")")")
	# The index's descriptor carries the variant (checked above); a config
	# may omit it (buildah 1.28 does for linux/arm/v7 in a multi-platform
	# build), so the config must match os/architecture, and the variant
	# when it has one.
	jq -e --arg p "$p" --arg v "$version" --arg c "$commit" --arg d "$commit_date" "
		(\"\\(.os)/\\(.architecture)\") == (\$p | split(\"/\")[0:2] | join(\"/\"))
		and (.variant == null or $plat == \$p) and .created == \$d and .config.User == \"65532:65532\"
		and .config.Labels[\"org.opencontainers.image.version\"] == \$v
		and .config.Labels[\"org.opencontainers.image.revision\"] == \$c
		and .config.Labels[\"org.opencontainers.image.created\"] == \$d
		and .config.Labels[\"org.opencontainers.image.licenses\"] == \"Apache-2.0\"
		and (.config.Labels[\"org.opencontainers.image.source\"] | startswith(\"https://\"))
		and ([.history[].created] | unique) == [\$d]" "$config" >/dev/null ||
		fail "the $p image config is not as expected: $(jq -c '{architecture, variant, created, user: .config.User, labels: .config.Labels}' "$config")"
	printf '%-14s %s, created %s, labels and user as expected\n' "$p:" "$manifest" "$commit_date"
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

log "provenance"
prov=$out/pollreload_${version}_provenance.intoto.json
# Its subjects: every other file but SHA256SUMS by SHA-256, the index and the
# six images.
{
	(cd "$out" && for f in $(ls | LC_ALL=C sort | grep -v -e '^SHA256SUMS$' -e '_provenance\.intoto\.json$'); do
		echo "$f sha256:$(sha256sum <"$f" | cut -d' ' -f1)"
	done)
	echo "pollreload_${version}_image.oci.tar/index $index"
	jq -r ".manifests[] | \"pollreload_${version}_image.oci.tar/\(.platform | $plat) \(.digest)\"" "$(blob "$index")"
} >"$work/want-subjects"
jq -r '.subject[] | "\(.name) sha256:\(.digest.sha256)"' "$prov" | diff "$work/want-subjects" - ||
	fail "the provenance's subjects (right) are not the release's files and images (left)"
jq -e --arg c "$commit" --arg v "$version" --arg g "$(go env GOVERSION)" '
	._type == "https://in-toto.io/Statement/v1" and .predicateType == "https://slsa.dev/provenance/v1"
	and .predicate.buildDefinition.externalParameters.source == "git+https://github.com/pollreload/pollreload@" + $c
	and .predicate.buildDefinition.externalParameters.version == $v
	and .predicate.buildDefinition.externalParameters.command == "release/build.sh " + $v + " OUTDIR"
	and (.predicate.buildDefinition.internalParameters.goBuild | length) == 6
	and (.predicate.buildDefinition.internalParameters.imageBuild | length) == 6
	and .predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit == $c
	and (.predicate.runDetails.builder.id | startswith("https://"))
	and .predicate.runDetails.builder.version.go == $g' "$prov" >/dev/null ||
	fail "the provenance's build definition or builder is not as expected: $(jq -c '.predicate.buildDefinition.externalParameters, .predicate.runDetails.builder' "$prov")"
# The modules: those the binary compiles in on any of the platforms, each with
# go.sum's h1: hash.
for p in "${platforms[@]}"; do
	IFS=/ read -r os arch _ <<<"$p"
	(cd "$work/clone1" && GOOS=$os GOARCH=$arch CGO_ENABLED=0 go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}' .)
done | grep . | LC_ALL=C sort -u >"$work/want-modules"
jq -r '.predicate.buildDefinition.resolvedDependencies[] | select(.uri // "" | startswith("pkg:golang/")) | "\(.name) \(.uri | sub(".*@"; "")) \(.digest.dirHash)"' "$prov" |
	python3 -c '
import base64, sys
for line in sys.stdin:
    path, version, dirhash = line.split()
    print(path, version, "h1:" + base64.b64encode(bytes.fromhex(dirhash)).decode())' | LC_ALL=C sort >"$work/prov-modules"
diff "$work/want-modules" <(cut -d' ' -f1,2 "$work/prov-modules") ||
	fail "the provenance's modules (right) are not those go list -deps names for the six platforms (left)"
grep -vF -f <(grep -v '/go.mod ' "$work/clone1/go.sum") "$work/prov-modules" &&
	fail "the provenance's module hashes above are not go.sum's"
echo "provenance: $(jq '.subject | length' "$prov") subjects (every file, the index, six images), $(wc -l <"$work/prov-modules") modules with go.sum's hashes, source $commit, builder $(jq -r .predicate.runDetails.builder.id "$prov")"

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
for _ in $(seq 600); do
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

# cosign, at the version release/sign.sh pins, is built once per machine.
cosign_version=$(sed -n 's/^cosign_version=//p' release/sign.sh)
if [[ $(cosign version 2>/dev/null | awk '$1 == "GitVersion:" { print $2 }') != "$cosign_version" ]]; then
	log "installing cosign $cosign_version (go install; kept in $(go env GOPATH)/bin for the next run)"
	t=$(date +%s)
	go install -trimpath -ldflags "-s -w" "github.com/sigstore/cosign/v2/cmd/cosign@$cosign_version"
	echo "cosign build: $(($(date +%s) - t)) s"
fi

log "signing: release/sign.sh with a key pair made for this run"
keys=$work/keys
mkdir "$keys"
COSIGN_PASSWORD=$(head -c 24 /dev/urandom | base64)
export COSIGN_PASSWORD
(cd "$keys" && cosign generate-key-pair >/dev/null 2>&1 &&
	cosign generate-key-pair --output-key-prefix other >/dev/null 2>&1) || fail "cosign generate-key-pair failed"
t=$(date +%s)
COSIGN_KEY=$keys/cosign.key TLOG_UPLOAD=false bash release/sign.sh "$version" "$out" "$reg/pollreload" >"$work/sign.log" 2>&1 ||
	{ cat "$work/sign.log"; fail "release/sign.sh failed"; }
grep -v -e '^Pushing signature' -e '^Pushing attestation' -e '^tlog entry' "$work/sign.log"
echo "release/sign.sh: $(($(date +%s) - t)) s"
cmp -s "$keys/cosign.pub" "$out/cosign.pub" || fail "the cosign.pub sign.sh wrote is not the public key of the pair"
pub=$out/cosign.pub
verify_opts=(--key "$pub" --insecure-ignore-tlog=true)

log "cosign verify and verify-attestation, as an admission policy would"
# expect_ok NAME CMD... runs a verification that must pass, showing what
# cosign printed on stderr (its list of checks).
expect_ok() {
	local name=$1
	shift
	"$@" >"$work/$name.out" 2>"$work/$name.err" || { cat "$work/$name.err"; fail "$name failed: $*"; }
	grep -v -e '^WARNING: Skipping tlog verification' -e '^WARNING: Could not fetch trusted_root.json' -e '^$' "$work/$name.err" | sed 's/^/  /'
}
# expect_fail NAME CMD... runs a verification that must fail, and shows why.
expect_fail() {
	local name=$1
	shift
	if "$@" >"$work/$name.out" 2>"$work/$name.err"; then
		cat "$work/$name.out" "$work/$name.err"
		fail "$name passed; it must fail: $*"
	fi
	echo "  $name fails as it must: $(grep -v -e '^WARNING: Skipping tlog verification' -e '^WARNING: Could not fetch trusted_root.json' -e '^$' "$work/$name.err" | tail -1)"
}
echo "cosign verify $reg/pollreload:$version"
expect_ok verify cosign verify "${verify_opts[@]}" "$reg/pollreload:$version"
jq -e --arg d "$index" 'length == 1 and .[0].critical.image["docker-manifest-digest"] == $d and .[0].critical.type == "cosign container image signature"' \
	"$work/verify.out" >/dev/null || fail "the signature does not name the index $index: $(cat "$work/verify.out")"
echo "  signed payload: $(jq -c '.[0].critical' "$work/verify.out")"
while read -r p manifest; do
	expect_ok "verify-$p" cosign verify "${verify_opts[@]}" "$reg/pollreload@$manifest" >/dev/null
	echo "cosign verify $reg/pollreload@$manifest ($p): ok"
done < <(jq -r ".manifests[] | \"\(.platform | $plat | sub(\"/\"; \"-\"; \"g\")) \(.digest)\"" "$(blob "$index")")
# attestation TYPE PREDICATE-TYPE FILE verifies the attestation of TYPE and
# requires its statement to be about the index and its predicate to be FILE.
attestation() {
	echo "cosign verify-attestation --type $1 $reg/pollreload@$index"
	expect_ok "attestation-$1" cosign verify-attestation "${verify_opts[@]}" --type "$1" "$reg/pollreload@$index"
	jq -c '.payload | @base64d | fromjson' "$work/attestation-$1.out" >"$work/statement-$1.json"
	# cosign re-encodes a predicate of a type it knows (slsaprovenance1) from
	# its own structs, which add empty objects (runDetails.metadata); they
	# are dropped before comparing.
	local prune='walk(if type == "object" then with_entries(select(.value != {} and .value != null)) else . end)'
	jq -e --arg d "${index#sha256:}" --arg t "$2" --slurpfile want "$3" "
		.predicateType == \$t and ([.subject[].digest.sha256] == [\$d])
		and (.predicate | $prune) == (\$want[0] | $prune)" \
		"$work/statement-$1.json" >/dev/null || {
		diff <(jq -S "$prune" "$3") <(jq -S ".predicate | $prune" "$work/statement-$1.json") | head -20
		fail "the $1 attestation (>) is not $3 (<) about $index: $(jq -c '{predicateType, subject}' "$work/statement-$1.json")"
	}
	echo "  statement: predicateType $2, subject $(jq -r '.subject[0].name' "$work/statement-$1.json")@$index, predicate = $(basename "$3") ($(jq -c '.predicate | tostring | length' "$work/statement-$1.json") bytes of JSON)"
}
attestation cyclonedx https://cyclonedx.org/bom "$sbom"
jq .predicate "$prov" >"$work/provenance-predicate.json"
attestation slsaprovenance1 https://slsa.dev/provenance/v1 "$work/provenance-predicate.json"

log "blob signatures"
for f in $(cd "$out" && ls | LC_ALL=C sort | grep -v -e '\.sig$' -e '^cosign\.pub$'); do
	expect_ok "verify-blob-$f" cosign verify-blob "${verify_opts[@]}" --signature "$out/$f.sig" "$out/$f" >/dev/null
	printf '%-52s %s\n' "$f.sig" "$(grep -v '^WARNING' "$work/verify-blob-$f.err" | tail -1)"
done

log "tampered copies must fail"
# flip FILE OFFSET changes one byte of FILE.
flip() {
	python3 - "$1" "$2" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x01]))
PY
}
tarball=pollreload_${version}_linux_amd64.tar.gz
cp "$out/$tarball" "$work/$tarball"
flip "$work/$tarball" $(($(stat -c %s "$work/$tarball") / 2))
echo "a copy of $tarball with byte $(($(stat -c %s "$work/$tarball") / 2)) changed:"
expect_fail verify-blob-tampered cosign verify-blob "${verify_opts[@]}" --signature "$out/$tarball.sig" "$work/$tarball"
echo "$tarball with another key's public key:"
expect_fail verify-blob-other-key cosign verify-blob --key "$keys/other.pub" --insecure-ignore-tlog=true --signature "$out/$tarball.sig" "$out/$tarball"
echo "the signed index with another key's public key:"
expect_fail verify-other-key cosign verify --key "$keys/other.pub" --insecure-ignore-tlog=true "$reg/pollreload@$index"

# The image with one byte of the amd64 image's largest layer changed: new
# layer, manifest and index digests, pushed over the release's tag.
bad=$work/tampered
cp -r "$oci" "$bad"
amd64_manifest=$(jq -r ".manifests[] | select(.platform | $plat == \"linux/amd64\") | .digest" "$(blob "$index")")
layer=$(jq -r '.layers | max_by(.size) | .digest' "$(blob "$amd64_manifest")")
python3 - "$bad" "$index" "$amd64_manifest" "$layer" <<'PY'
import hashlib, json, os, sys
root, index, manifest, layer = sys.argv[1:]
blobs = os.path.join(root, "blobs", "sha256")
def path(d): return os.path.join(blobs, d.split(":", 1)[1])
def rewrite(old, replace):
    # The blob named old, with the digest replace[0] changed to replace[1],
    # stored under its new digest.
    data = open(path(old), "rb").read().replace(replace[0].encode(), replace[1].encode())
    new = "sha256:" + hashlib.sha256(data).hexdigest()
    open(path(new), "wb").write(data)
    return new
data = bytearray(open(path(layer), "rb").read())
data[len(data) // 2] ^= 0x01
new_layer = "sha256:" + hashlib.sha256(data).hexdigest()
open(path(new_layer), "wb").write(data)
new_manifest = rewrite(manifest, (layer, new_layer))
new_index = rewrite(index, (manifest, new_manifest))
top = open(os.path.join(root, "index.json")).read().replace(index, new_index)
open(os.path.join(root, "index.json"), "w").write(top)
PY
tampered=$(jq -r '.manifests[0].digest' "$bad/index.json")
skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false "oci:$bad:$version" "docker://$reg/pollreload:$version"
echo "$reg/pollreload:$version re-tagged to a copy with one byte of the amd64 image's layer $layer changed (index $tampered):"
expect_fail verify-tampered-tag cosign verify "${verify_opts[@]}" "$reg/pollreload:$version"
expect_fail attestation-tampered-tag cosign verify-attestation "${verify_opts[@]}" --type slsaprovenance1 "$reg/pollreload:$version"
# The release's signature and attestations copied onto the tampered digest,
# as an attacker with push rights would: the signed payload names the
# release's digest, not this one.
for kind in sig att; do
	skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false \
		"docker://$reg/pollreload:sha256-${index#sha256:}.$kind" "docker://$reg/pollreload:sha256-${tampered#sha256:}.$kind"
done
echo "the release's signature and attestations copied to the tampered index's sha256-${tampered#sha256:}.sig/.att:"
expect_fail verify-tampered-copied cosign verify "${verify_opts[@]}" "$reg/pollreload@$tampered"
expect_fail attestation-tampered-copied cosign verify-attestation "${verify_opts[@]}" --type cyclonedx "$reg/pollreload@$tampered"
echo "the release pinned by digest still verifies:"
expect_ok verify-pinned cosign verify "${verify_opts[@]}" "$reg/pollreload@$index" >/dev/null
echo "  cosign verify $reg/pollreload@$index: ok"

echo "release.sh: ok in $(($(date +%s) - start)) s"
