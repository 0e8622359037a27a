#!/usr/bin/env bash
# e2e-deps.sh installs what the end-to-end tests (./e2e, ./internal/testenv)
# drive, on a fresh Debian 12, quietly and idempotently: packages already
# present are not fetched again, and apt's index is refreshed only when
# something is missing.
set -euo pipefail

packages=(
	nginx-light       # nginx reload test
	pgbouncer         # pgbouncer reload test
	postgresql-client # psql, pgbouncer's admin console
	prometheus        # prometheus and promtool
	bindfs            # FUSE mirror: a file system without inotify
	sshfs             # FUSE over SSH
	openssh-server    # sshd on 127.0.0.1 for sshfs
	openssh-client    # ssh, ssh-keygen
	inotify-tools     # inotifywait, to show inotify stays silent
	fuse3             # fusermount3
)

missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$pkg")
	fi
done
if ((${#missing[@]} == 0)); then
	echo "e2e-deps: all ${#packages[@]} packages present"
	exit 0
fi

sudo=""
if [[ $(id -u) != 0 ]]; then
	sudo="sudo"
fi
echo "e2e-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start nginx, pgbouncer, prometheus or sshd as
# services: the tests run their own on free ports, and a system instance
# called nginx would also match PROCESS_NAME=nginx. policy-rc.d exit 101
# forbids service starts during this install only.
policy=/usr/sbin/policy-rc.d
restore_policy=""
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
	restore_policy=1
fi
trap '[[ -n $restore_policy ]] && $sudo rm -f "$policy"' EXIT
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "e2e-deps: done"
