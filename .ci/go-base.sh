#!/usr/bin/env bash
# .ci/go-base.sh makes, in buildah's local store, the image the Dockerfile's
# build stage names (`FROM --platform=$BUILDPLATFORM golang:... AS build`),
# because no registry is reachable here. The stand-in holds the host's Go
# toolchain, busybox (for the shell RUN needs), the CA bundle and a module
# cache filled from the host (the build runs with GOPROXY=off). It is made
# under the exact name, and under docker.io/library/<name>, which short names
# resolve to. Prints that name.
#
# Used by .ci/image.sh and .ci/release.sh. Needs: Go at /usr/local/go, root,
# buildah and busybox-static.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

# The stand-in must carry the exact name the Dockerfile's build stage uses;
# the --platform flag is optional.
go_base=$(awk 'toupper($1) == "FROM" {
		i = 2
		if ($i ~ /^--platform=/) i++
		if (toupper($(i + 1)) == "AS" && $(i + 2) == "build") print $i
	}' Dockerfile)
if [[ -z $go_base ]]; then
	echo "go-base.sh: no 'FROM ... AS build' line in Dockerfile" >&2
	exit 1
fi

work=$(mktemp -d)
ctr=
cleanup() {
	[[ -n $ctr ]] && buildah rm "$ctr" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

# Drop what an earlier run left, so the store does not fill with old layers.
buildah rmi "localhost/$go_base" "docker.io/library/$go_base" >/dev/null 2>&1 || true
root=$work/rootfs
mkdir -p "$root"/{bin,etc/ssl/certs,root,go/pkg/mod} "$root/tmp"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
	[[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
done
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
# Fill the module cache the build will use offline: from the host's cache when
# it has the modules, from the module proxy otherwise.
GOMODCACHE=$root/go/pkg/mod GOFLAGS=-modcacherw \
	GOPROXY="file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)" \
	go mod download >&2

ctr=$(buildah from scratch)
buildah copy --quiet "$ctr" "$root" / >/dev/null
buildah copy --quiet "$ctr" /usr/local/go /usr/local/go >/dev/null
buildah config \
	--env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--env GOPATH=/go --env GOTOOLCHAIN=local --env GOPROXY=off \
	--workingdir /go "$ctr"
buildah commit --quiet --rm "$ctr" "$go_base" >/dev/null
ctr=
buildah tag "$go_base" "docker.io/library/$go_base"
echo "$go_base"
