# shellcheck shell=bash
# .ci/lib.sh: the helpers the .ci/ scripts share, one copy each. Sourced after
# `cd` to the repository root and with Go on PATH.

# log prints a progress line.
log() { printf '== %s\n' "$*"; }

# install_missing PACKAGE=FILE... installs, with apt-get, each Debian package
# whose FILE does not exist, and nothing when all are there.
install_missing() {
	local missing=() pair
	for pair in "$@"; do
		[[ -e ${pair#*=} ]] || missing+=("${pair%%=*}")
	done
	((${#missing[@]} == 0)) && return
	log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
}

# install_helm installs helm with `go install` when it is not on PATH.
install_helm() {
	command -v helm >/dev/null && return
	log "installing helm"
	go install helm.sh/helm/v3/cmd/helm@v3.16.3
}
