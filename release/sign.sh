#!/usr/bin/env bash
# release/sign.sh VERSION OUTDIR REPOSITORY publishes and signs a release that
# release/build.sh built into OUTDIR:
#
#   1. checks OUTDIR's SHA256SUMS;
#   2. pushes the image index and its six images to REPOSITORY:VERSION
#      (skopeo copy --all: the index digest stays the release's);
#   3. signs the index and every platform's image by digest (cosign sign
#      --recursive), so a policy that checks either admits it;
#   4. attaches to the index, as signed in-toto attestations (cosign attest),
#      the CycloneDX SBOM (--type cyclonedx) and the SLSA provenance
#      (--type slsaprovenance1, the predicate of
#      pollreload_VERSION_provenance.intoto.json);
#   5. signs every file of the release (cosign sign-blob): FILE.sig beside
#      FILE (and FILE.bundle, with the transparency log entry, when
#      TLOG_UPLOAD=true), and writes the public key as OUTDIR/cosign.pub.
#
# The signatures and attestations live in REPOSITORY beside the image (cosign's
# sha256-DIGEST.sig and .att tags); `cosign copy` moves them with it.
#
# Environment:
#   COSIGN_KEY       the signing key, as cosign names keys: a file made by
#                    `cosign generate-key-pair` (its password in
#                    COSIGN_PASSWORD), env://VAR (the PEM in VAR), or a KMS
#                    (awskms://, gcpkms://, azurekms://, hashivault://) or
#                    k8s://NAMESPACE/SECRET reference. Required; never a key
#                    in the repository.
#   COSIGN_PASSWORD  the key file's password (read by cosign itself).
#   TLOG_UPLOAD      false (default): no Rekor transparency log entry, for a
#                    machine without the internet (verify with
#                    --insecure-ignore-tlog=true); true: record every
#                    signature in the public Rekor log.
# Registry credentials are skopeo's and cosign's own (skopeo login / cosign
# login, or REGISTRY_AUTH_FILE / ~/.docker/config.json). A REPOSITORY on
# 127.0.0.1 or localhost is reached over plain HTTP.
#
# Needs: cosign at the version below (go install
# github.com/sigstore/cosign/v2/cmd/cosign@VERSION), skopeo, jq, sha256sum.
set -euo pipefail

# The cosign release this script is written and tested against; .ci/release.sh
# installs this one.
cosign_version=v2.6.5

usage() {
	echo "usage: COSIGN_KEY=KEY release/sign.sh VERSION OUTDIR REPOSITORY   (REPOSITORY as in ghcr.io/pollreload/pollreload)" >&2
	exit 2
}
(($# == 3)) || usage
version=$1
outdir=$2
repository=$3
if [[ -z ${COSIGN_KEY:-} ]]; then
	echo "release/sign.sh: COSIGN_KEY is not set; want the signing key: a cosign.key file (password in COSIGN_PASSWORD), env://VAR, or a KMS or k8s:// reference" >&2
	exit 2
fi
tlog=${TLOG_UPLOAD:-false}
if [[ $tlog != true && $tlog != false ]]; then
	echo "release/sign.sh: TLOG_UPLOAD \"$tlog\" is not accepted; want true or false" >&2
	exit 2
fi
if [[ $repository == *:* && ${repository##*/} == *:* || $repository == *@* ]]; then
	echo "release/sign.sh: REPOSITORY \"$repository\" has a tag or digest; want the repository only, as in ghcr.io/pollreload/pollreload" >&2
	exit 2
fi
for tool in cosign skopeo jq sha256sum; do
	if ! command -v "$tool" >/dev/null; then
		echo "release/sign.sh: $tool is not installed (see the header of release/sign.sh)" >&2
		exit 1
	fi
done
got=$(cosign version 2>/dev/null | awk '$1 == "GitVersion:" { print $2 }')
if [[ $got != "$cosign_version" ]]; then
	echo "release/sign.sh: cosign is ${got:-of unknown version}; want $cosign_version (go install github.com/sigstore/cosign/v2/cmd/cosign@$cosign_version)" >&2
	exit 1
fi

cd "$outdir"
archive=pollreload_${version}_image.oci.tar
sbom=pollreload_${version}_sbom.cdx.json
provenance=pollreload_${version}_provenance.intoto.json
for f in SHA256SUMS "$archive" "$sbom" "$provenance"; do
	[[ -f $f ]] || {
		echo "release/sign.sh: $outdir has no $f; want a release built by release/build.sh $version" >&2
		exit 1
	}
done
sha256sum --quiet -c SHA256SUMS

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The registry: plain HTTP on the loopback (a registry for tests), TLS
# everywhere else. cosign (go-containerregistry) makes the same choice itself.
host=${repository%%/*}
tls=true
[[ $host == 127.0.0.1:* || $host == localhost:* || $host == "[::1]":* ]] && tls=false

index=sha256:$(skopeo inspect --raw "oci-archive:$archive:$version" | sha256sum | cut -d' ' -f1)
echo "== pushing $repository:$version ($index)"
skopeo copy --quiet --all --preserve-digests --dest-tls-verify="$tls" \
	"oci-archive:$archive:$version" "docker://$repository:$version"
pushed=sha256:$(skopeo inspect --raw --tls-verify="$tls" "docker://$repository:$version" | sha256sum | cut -d' ' -f1)
if [[ $pushed != "$index" ]]; then
	echo "release/sign.sh: $repository:$version is $pushed after the push; want the release's index $index" >&2
	exit 1
fi

# Everything is signed by digest, never by tag: a tag can move.
ref=$repository@$index
sign_opts=(--yes --key "$COSIGN_KEY" --tlog-upload="$tlog")
echo "== signing $ref and its platform images"
cosign sign "${sign_opts[@]}" --recursive "$ref"
echo "== attaching the SBOM and the provenance as attestations"
cosign attest "${sign_opts[@]}" --type cyclonedx --predicate "$sbom" "$ref"
jq .predicate "$provenance" >"$work/provenance.predicate.json"
cosign attest "${sign_opts[@]}" --type slsaprovenance1 --predicate "$work/provenance.predicate.json" "$ref"

echo "== signing the files"
for f in $(LC_ALL=C ls | grep -v -e '\.sig$' -e '\.bundle$' -e '^cosign\.pub$'); do
	bundle=()
	[[ $tlog == true ]] && bundle=(--bundle "$f.bundle")
	cosign sign-blob "${sign_opts[@]}" --output-signature "$f.sig" "${bundle[@]}" "$f" >/dev/null
	echo "$f.sig"
done
cosign public-key --key "$COSIGN_KEY" >cosign.pub
echo "cosign.pub: $(sha256sum <cosign.pub | cut -d' ' -f1)"
echo "== signed: $ref"
