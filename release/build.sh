#!/usr/bin/env bash
# release/build.sh VERSION OUTDIR builds a release of the commit checked out
# (HEAD; uncommitted changes are never included) into OUTDIR, which must be
# empty or absent. It writes exactly:
#
#   pollreload_VERSION_linux_amd64.tar.gz   static binary, LICENSE, README.md
#   pollreload_VERSION_linux_arm64.tar.gz   the same, cross-compiled
#   pollreload_VERSION_image.oci.tar        OCI archive: a manifest list for
#                                           linux/amd64 and linux/arm64
#   pollreload-VERSION.tgz                  the Helm chart (helm package)
#   pollreload_VERSION_sbom.cdx.json        CycloneDX SBOM of the module graph
#   SHA256SUMS                              over all of the above
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
# Needs: go, git, buildah, helm, cyclonedx-gomod (go install
# github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0), jq, GNU
# tar, gzip. Environment: PULL (buildah's --pull, default missing; CI, which
# has no registry, sets never), BUILDAH_ISOLATION (default chroot).
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

# Binaries: static (CGO_ENABLED=0), no paths (-trimpath), no VCS stamp
# (-buildvcs=false; the commit comes in through -X), no build ID, baseline
# instruction sets. The Dockerfile's build stage uses the same flags.
ldflags="-s -w -buildid= -X main.version=$version -X main.commit=$commit -X main.commitDate=$commit_date"
for arch in amd64 arm64; do
	name=pollreload_${version}_linux_${arch}
	mkdir "$work/$name"
	(cd "$src" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOAMD64=v1 GOARM64=v8.0 \
		GOFLAGS=-mod=readonly GOTOOLCHAIN=local \
		go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$work/$name/pollreload" .)
	cp "$src/LICENSE" "$src/README.md" "$work/$name/"
	deterministic_tar "$work/$name" "$outdir/$name.tar.gz" LICENSE README.md pollreload
	echo "binary linux/$arch: $(sha256sum <"$work/$name/pollreload" | cut -d' ' -f1)"
done

# Images: one per platform from the Dockerfile, every layer and the config
# dated at the commit (--timestamp), then one manifest list of both. buildah
# before 1.29 does not set BUILDPLATFORM itself, so it is passed.
build_platform=linux/$(go env GOHOSTARCH)
manifest=localhost/pollreload-release:$tag
buildah manifest create "$manifest" >/dev/null
for arch in amd64 arm64; do
	image=localhost/pollreload-release:$tag-$arch
	images+=("$image")
	buildah build --quiet --pull="${PULL:-missing}" --platform "linux/$arch" \
		--timestamp "$SOURCE_DATE_EPOCH" \
		--build-arg "BUILDPLATFORM=$build_platform" \
		--build-arg "VERSION=$version" --build-arg "COMMIT=$commit" \
		--build-arg "COMMIT_DATE=$commit_date" --build-arg "CREATED=$commit_date" \
		-t "$image" "$src" >/dev/null
	ctr=$(buildah from --pull=never --arch "$arch" "$image")
	mnt=$(buildah mount "$ctr")
	if ! cmp -s "$mnt/pollreload" "$work/pollreload_${version}_linux_${arch}/pollreload"; then
		echo "release/build.sh: the linux/$arch image's /pollreload differs from the tarball's binary;" \
			"the Dockerfile's build stage must use the same Go ($(go version)) and flags:" >&2
		go version -m "$mnt/pollreload" >&2 || true
		exit 1
	fi
	buildah umount "$ctr" >/dev/null
	buildah rm "$ctr" >/dev/null
	ctr=
	buildah manifest add --os linux --arch "$arch" "$manifest" "containers-storage:$image" >/dev/null
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
jq -r '.manifests[] | "image \(.platform.os)/\(.platform.architecture): \(.digest)"' \
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

(cd "$outdir" && sha256sum -- pollreload_"${version}"_linux_amd64.tar.gz pollreload_"${version}"_linux_arm64.tar.gz \
	pollreload_"${version}"_image.oci.tar pollreload-"${version}".tgz pollreload_"${version}"_sbom.cdx.json >SHA256SUMS)
mv "$outdir"/* "$final/"
echo "== $final"
(cd "$final" && for f in *; do printf '%10d  %s\n' "$(stat -c %s "$f")" "$f"; done)
cat "$final/SHA256SUMS"
