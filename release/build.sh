#!/usr/bin/env bash
# release/build.sh VERSION OUTDIR builds a release of the commit checked out
# (HEAD; uncommitted changes are never included) into OUTDIR, which must be
# empty or absent. It writes exactly:
#
#   pollreload_VERSION_linux_amd64.tar.gz   static binary, LICENSE, README.md
#   pollreload_VERSION_linux_arm64.tar.gz   the same, cross-compiled, and so
#   pollreload_VERSION_linux_armv7.tar.gz   for linux/arm/v7,
#   pollreload_VERSION_linux_ppc64le.tar.gz linux/ppc64le,
#   pollreload_VERSION_linux_s390x.tar.gz   linux/s390x
#   pollreload_VERSION_linux_riscv64.tar.gz and linux/riscv64
#   pollreload_VERSION_image.oci.tar        OCI archive: one image index (a
#                                           manifest list) of all six platforms
#   pollreload-VERSION.tgz                  the Helm chart (helm package)
#   pollreload_VERSION_sbom.cdx.json        CycloneDX SBOM of the module graph
#   pollreload_VERSION_provenance.intoto.json  SLSA provenance v1 (an in-toto
#                                           statement) of all of the above
#   SHA256SUMS                              over all of the above
#
# Nothing here is signed: signatures are not reproducible (ECDSA signs with a
# random nonce). release/sign.sh signs a built release and publishes it.
#
# Every artifact is byte-reproducible: the same commit built with the same
# tools (Go, buildah, helm, cyclonedx-gomod, GNU tar and gzip, the CA bundle
# the build stage copies) gives the same bytes, in any directory, at any time.
# What makes it so is listed under "Reproducible builds" in docs/install.md; the
# times written anywhere are the commit's (SOURCE_DATE_EPOCH).
#
# The images are built from the Dockerfile, whose build stage runs on this
# machine's platform and cross-compiles; the script checks that the binary in
# each image is byte-identical to the one in the tarball.
#
# The platforms are built JOBS at a time (default: the number of CPUs).
#
# Needs: go, git, buildah, helm, cyclonedx-gomod (go install
# github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0), jq, GNU
# tar, gzip; the Go module proxy or a module cache holding release/provenance's
# modules. Environment: PULL (buildah's --pull, default missing; CI, which has
# no registry, sets never), BUILDAH_ISOLATION (default chroot), JOBS,
# BUILDER_ID (the provenance's builder.id: who ran the build; default the
# script's URL, a CI release names its workflow).
set -euo pipefail

usage() {
	echo "usage: release/build.sh VERSION OUTDIR   (VERSION as in 1.2.3 or 1.2.3-rc.1)" >&2
	exit 2
}
(($# == 2)) || usage
version=$1
outdir=$2
# A chart version and an image tag at once: SemVer without build metadata
# (a tag cannot hold "+") and without a leading "v".
semver='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
if [[ ! $version =~ $semver ]]; then
	echo "release/build.sh: VERSION \"$version\" is not a release version; want MAJOR.MINOR.PATCH with an optional -PRERELEASE, as in 1.2.3 or 1.2.3-rc.1, without a leading v" >&2
	exit 2
fi
if [[ -e $outdir && -n $(ls -A "$outdir") ]]; then
	echo "release/build.sh: OUTDIR \"$outdir\" is not empty; give a new or empty directory, so it holds exactly this release" >&2
	exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# The chart's artifacthub.io/changes is the CHANGELOG.md entry; without one
# there is no release. (Checked here to fail early, and read from the commit
# below.)
bash release/chart-changes.sh "$version" >/dev/null || exit 2
for tool in go git buildah helm cyclonedx-gomod jq tar gzip sha256sum; do
	if ! command -v "$tool" >/dev/null; then
		echo "release/build.sh: $tool is not installed (see the header of release/build.sh)" >&2
		exit 1
	fi
done

umask 022
export LC_ALL=C TZ=UTC
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
commit=$(git rev-parse HEAD)
# Every time stamped anywhere is the commit's (reproducible-builds.org).
SOURCE_DATE_EPOCH=$(git show -s --format=%ct HEAD)
export SOURCE_DATE_EPOCH
commit_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
	echo "note: the worktree has uncommitted changes; they are not in this build of $commit"
fi

mkdir -p "$outdir"
final=$(cd "$outdir" && pwd)
work=$(mktemp -d)
# Artifacts are made in $work/out and moved to OUTDIR only when all are
# there, so a failed build leaves no partial release behind.
outdir=$work/out
mkdir "$outdir"
tag=$$-$RANDOM
images=()
manifest=
ctr=
ca_bundle=
cleanup() {
	if [[ -n $ctr ]]; then
		buildah umount "$ctr" >/dev/null 2>&1
		buildah rm "$ctr" >/dev/null 2>&1
	fi
	[[ -z $manifest ]] || buildah manifest rm "$manifest" >/dev/null 2>&1 || true
	local i
	for i in "${images[@]}"; do buildah rmi "$i" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# The source is the commit itself, not the worktree.
src=$work/src
mkdir "$src"
git archive --format=tar "$commit" | tar -x -C "$src"

echo "== pollreload $version from $commit ($commit_date), $(go version)"

# deterministic_tar DIR OUT FILES... writes a gzipped tar of FILES (relative
# to DIR) whose bytes depend only on their names, modes and contents.
deterministic_tar() {
	local dir=$1 out=$2
	shift 2
	tar -C "$dir" --format=ustar --sort=name --mtime="@$SOURCE_DATE_EPOCH" \
		--owner=0 --group=0 --numeric-owner -c -- "$@" | gzip -9 -n >"$out"
}

# The platforms, in the order of the image index. suffix is the tarball's
# name part (goreleaser's: the variant joins the architecture).
platforms=(linux/amd64 linux/arm64 linux/arm/v7 linux/ppc64le linux/s390x linux/riscv64)
suffix() { local p=${1#*/}; echo "linux_${p//\//}"; }
jobs=${JOBS:-$(nproc)}

# in_parallel FUNC runs FUNC PLATFORM for every platform, each one's output
# in $work/FUNC-SUFFIX.log, and fails (showing the logs) if any fails. All
# start at once, and FUNC takes a slot before its heavy work, so that $jobs
# work at a time.
in_parallel() {
	local fn=$1 p pids=() names=() i
	for p in "${platforms[@]}"; do
		"$fn" "$p" >"$work/$fn-$(suffix "$p").log" 2>&1 &
		pids+=($!)
		names+=("$p")
	done
	local failed=
	for i in "${!pids[@]}"; do
		if ! wait "${pids[$i]}"; then
			cat "$work/$fn-$(suffix "${names[$i]}").log" >&2
			failed+=" ${names[$i]}"
		fi
	done
	[[ -z $failed ]] || { echo "release/build.sh: $fn failed for$failed" >&2; return 1; }
}
# A FIFO of $jobs tokens limits how many jobs work at once.
mkfifo "$work/slots"
exec 3<>"$work/slots"
for ((i = 0; i < jobs; i++)); do echo >&3; done
slot() { read -r -u 3; }
release_slot() { echo >&3; }

# goenv PLATFORM prints the Go environment that builds PLATFORM: the
# baseline instruction set of each architecture (a GO<ARCH> variable counts
# only for its own), the same in the Dockerfile's build stage.
goenv() {
	local os arch variant
	IFS=/ read -r os arch variant <<<"$1"
	variant=${variant:-v7}
	echo "CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOAMD64=v1 GOARM64=v8.0 GOARM=${variant#v} GOPPC64=power8 GORISCV64=rva20u64"
}

# Binaries: static (CGO_ENABLED=0), no paths (-trimpath), no VCS stamp
# (-buildvcs=false; the commit comes in through -X), no build ID, baseline
# instruction sets. The Dockerfile's build stage uses the same flags.
ldflags="-s -w -buildid= -X main.version=$version -X main.commit=$commit -X main.commitDate=$commit_date"
build_binary() {
	local name=pollreload_${version}_$(suffix "$1")
	slot
	mkdir "$work/$name"
	local rc=0
	# shellcheck disable=SC2046 # goenv's words are separate assignments
	(cd "$src" && env $(goenv "$1") GOFLAGS=-mod=readonly GOTOOLCHAIN=local \
		go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$work/$name/pollreload" .) || rc=$?
	release_slot
	((rc == 0)) || return $rc
	cp "$src/LICENSE" "$src/README.md" "$work/$name/"
	deterministic_tar "$work/$name" "$outdir/$name.tar.gz" LICENSE README.md pollreload
}
in_parallel build_binary
for p in "${platforms[@]}"; do
	echo "binary $p: $(sha256sum <"$work/pollreload_${version}_$(suffix "$p")/pollreload" | cut -d' ' -f1)"
done

# Images: one per platform from the Dockerfile, every layer and the config
# dated at the commit (--timestamp), then one index of all, in the order of
# $platforms. The build stage runs on this machine's platform and
# cross-compiles; the final stage is scratch, so no platform needs emulation
# or a base image. buildah before 1.29 does not set BUILDPLATFORM itself, so
# it is passed.
build_platform=linux/$(go env GOHOSTARCH)
manifest=localhost/pollreload-release:$tag
for p in "${platforms[@]}"; do images+=("localhost/pollreload-release:$tag-$(suffix "$p")"); done
build_image() {
	slot
	local rc=0
	buildah build --quiet --pull="${PULL:-missing}" --platform "$1" \
		--timestamp "$SOURCE_DATE_EPOCH" \
		--build-arg "BUILDPLATFORM=$build_platform" \
		--build-arg "VERSION=$version" --build-arg "COMMIT=$commit" \
		--build-arg "COMMIT_DATE=$commit_date" --build-arg "CREATED=$commit_date" \
		-t "localhost/pollreload-release:$tag-$(suffix "$1")" "$src" || rc=$?
	release_slot
	return $rc
}
in_parallel build_image
buildah manifest create "$manifest" >/dev/null
for p in "${platforms[@]}"; do
	IFS=/ read -r os arch variant <<<"$p"
	image=localhost/pollreload-release:$tag-$(suffix "$p")
	ctr=$(buildah from --pull=never --arch "$arch" ${variant:+--variant "$variant"} "$image")
	mnt=$(buildah mount "$ctr")
	if ! cmp -s "$mnt/pollreload" "$work/pollreload_${version}_$(suffix "$p")/pollreload"; then
		echo "release/build.sh: the $p image's /pollreload differs from the tarball's binary;" \
			"the Dockerfile's build stage must use the same Go ($(go version)) and flags:" >&2
		go version -m "$mnt/pollreload" >&2 || true
		exit 1
	fi
	# The CA bundle comes from the build stage's image; the provenance
	# names it.
	ca_bundle=$(sha256sum <"$mnt/etc/ssl/certs/ca-certificates.crt" | cut -d' ' -f1)
	buildah umount "$ctr" >/dev/null
	buildah rm "$ctr" >/dev/null
	ctr=
	buildah manifest add --os "$os" --arch "$arch" ${variant:+--variant "$variant"} \
		"$manifest" "containers-storage:$image" >/dev/null
done
archive=$outdir/pollreload_${version}_image.oci.tar
buildah manifest push --quiet --all --format oci "$manifest" "oci-archive:$archive:$version"
# The archive's tar headers carry the time of the push; rewrite it with the
# commit's time, keeping every blob and index byte as pushed.
mkdir "$work/oci"
tar -x -C "$work/oci" -f "$archive"
(cd "$work/oci" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
	tar --format=ustar --no-recursion --null -T - --mtime="@$SOURCE_DATE_EPOCH" \
		--owner=0 --group=0 --numeric-owner -cf "$archive")
index_digest=$(jq -r '.manifests[0].digest' "$work/oci/index.json")
echo "image index: $index_digest"
jq -r '.manifests[] | "image \(.platform.os)/\(.platform.architecture)\(.platform.variant // "" | if . == "" then "" else "/" + . end): \(.digest)"' \
	"$work/oci/blobs/sha256/${index_digest#sha256:}"

# Chart: version, appVersion, the image tag and the Artifact Hub annotations
# stamped, then packaged by helm. helm writes the current time into each tar
# header, so the package is rewritten with the commit's time, entries and
# contents unchanged.
chart=$work/chart/pollreload
mkdir -p "$work/chart"
cp -r "$src/charts/pollreload" "$chart"
changes=$(bash "$src/release/chart-changes.sh" "$version")
old_app_version=$(awk '$1 == "appVersion:" { gsub(/"/, "", $2); print $2 }' "$chart/Chart.yaml")
# stamp FILE replaces, in place, the sidecar's image tag, the Artifact Hub
# image and the changes annotation, and prints how many it replaced.
stamp() {
	# changes goes through the environment: awk -v would undo its escapes.
	CHANGES=$changes awk -v old="$old_app_version" -v new="$version" '
		$0 == "    tag: \"" old "\"" { print "    tag: \"" new "\""; n++; next }
		$1 == "image:" && $2 == "ghcr.io/pollreload/pollreload:" old { sub(/:[^:]*$/, ":" new); n++ }
		$0 == "  artifacthub.io/changes: |" { print; print ENVIRON["CHANGES"]; skip = 1; n++; next }
		skip && /^    / { next }
		{ skip = 0; print }
		END { print n > "/dev/stderr" }
	' "$1" 2>"$work/stamped" >"$1.new"
	mv "$1.new" "$1"
	cat "$work/stamped"
}
if [[ $(stamp "$chart/values.yaml") != 1 || $(stamp "$chart/Chart.yaml") != 2 ]]; then
	echo "release/build.sh: could not stamp $version into the chart: want sidecar.image.tag \"$old_app_version\" in values.yaml," \
		"and the ghcr.io/pollreload/pollreload:$old_app_version image and the changes in Chart.yaml's annotations" >&2
	exit 1
fi
helm package --version "$version" --app-version "$version" -d "$work/chart" "$chart" >/dev/null
mkdir "$work/chart/unpacked"
tar -x -C "$work/chart/unpacked" -f "$work/chart/pollreload-$version.tgz"
(cd "$work/chart/unpacked" && find . -type f | sed 's|^\./||' | LC_ALL=C sort >"$work/chart/files")
mapfile -t chart_files <"$work/chart/files"
chmod 0644 "${chart_files[@]/#/$work/chart/unpacked/}"
deterministic_tar "$work/chart/unpacked" "$outdir/pollreload-$version.tgz" "${chart_files[@]}"
echo "chart: pollreload-$version.tgz, ${#chart_files[@]} files"

# SBOM: the module graph of what ships (no test-only modules) and the
# standard library, from cyclonedx-gomod. It reads the version from git,
# which the exported source has not, so the main component's version, its
# purl and the document's time are set here; the serial number is derived
# from the commit and version, so it is the same in every build.
sbom=$outdir/pollreload_${version}_sbom.cdx.json
h=$(printf '%s %s' "$commit" "$version" | sha256sum)
serial=urn:uuid:${h:0:8}-${h:8:4}-5${h:13:3}-8${h:17:3}-${h:20:12}
(cd "$src" && GOFLAGS=-mod=readonly cyclonedx-gomod mod -json -licenses -std \
	-serial "$serial" -notimestamp -output "$work/sbom.json" . 2>"$work/sbom.log") || {
	cat "$work/sbom.log" >&2
	exit 1
}
jq --arg v "v$version" --arg t "$commit_date" '
	.metadata.timestamp = $t
	| .metadata.component.version = $v
	| .metadata.component.purl |= sub("\\?"; "@" + $v + "?")
' "$work/sbom.json" >"$sbom"
echo "sbom: $(jq '.components | length' "$sbom") components"

# Provenance: SLSA v1, as an in-toto statement whose subjects are the files
# above and the image index, made by release/provenance (the in-toto
# attestation Go bindings) from what this script did. It holds no time, so it
# is reproducible too; BUILDER_ID must then be the same.
source_repo=https://github.com/pollreload/pollreload
(cd "$src/release/provenance" && GOFLAGS=-mod=readonly GOTOOLCHAIN=local \
	go build -trimpath -o "$work/provenance" .)
tool_version() { go version -m "$(command -v "$1")" | awk '$1 == "mod" { print $3 }'; }
provenance_args=(
	-source "$src" -repo "$source_repo" -commit "$commit" -version "$version"
	-builder-id "${BUILDER_ID:-$source_repo/blob/main/release/build.sh}"
	-build-type "$source_repo/blob/$commit/release/build.sh"
	-external "command=release/build.sh $version OUTDIR"
	-internal "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
	-tool "go=$(go env GOVERSION)"
	-tool "buildah=$(buildah --version | awk '{ print $3 }')"
	-tool "helm=$(helm version --template '{{.Version}}')"
	-tool "cyclonedx-gomod=$(tool_version cyclonedx-gomod)"
	-tool "tar=$(tar --version | head -1)"
	-tool "gzip=$(gzip --version | head -1)"
	-dependency "go https://go.dev/dl/$(go env GOVERSION).$(go env GOHOSTOS)-$(go env GOHOSTARCH).tar.gz -"
	-dependency "build-stage-ca-certificates.crt - sha256:$ca_bundle"
	-subject-digest "pollreload_${version}_image.oci.tar/index=$index_digest"
)
for p in "${platforms[@]}"; do
	provenance_args+=(-platform "$p" -internal "goBuild=$p: $(goenv "$p") GOFLAGS=-mod=readonly go build -trimpath -buildvcs=false -ldflags \"$ldflags\" -o pollreload .")
	provenance_args+=(-internal "imageBuild=$p: buildah build --platform $p --timestamp $SOURCE_DATE_EPOCH --build-arg BUILDPLATFORM=$build_platform --build-arg VERSION=$version --build-arg COMMIT=$commit --build-arg COMMIT_DATE=$commit_date --build-arg CREATED=$commit_date .")
done
while read -r platform digest; do
	provenance_args+=(-subject-digest "pollreload_${version}_image.oci.tar/$platform=$digest")
done < <(jq -r '.manifests[] | "\(.platform.os)/\(.platform.architecture)\(.platform.variant // "" | if . == "" then "" else "/" + . end) \(.digest)"' \
	"$work/oci/blobs/sha256/${index_digest#sha256:}")
provenance=pollreload_${version}_provenance.intoto.json
(cd "$outdir" && "$work/provenance" "${provenance_args[@]}" -- $(ls | LC_ALL=C sort) >"$work/$provenance")
mv "$work/$provenance" "$outdir/"
echo "provenance: $(jq '.subject | length' "$outdir/$provenance") subjects, $(jq '.predicate.buildDefinition.resolvedDependencies | length' "$outdir/$provenance") resolved dependencies"

(cd "$outdir" && sha256sum -- $(ls | LC_ALL=C sort) >"$work/SHA256SUMS")
mv "$work/SHA256SUMS" "$outdir/"
mv "$outdir"/* "$final/"
echo "== $final"
(cd "$final" && for f in *; do printf '%10d  %s\n' "$(stat -c %s "$f")" "$f"; done)
cat "$final/SHA256SUMS"
