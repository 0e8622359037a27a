#!/usr/bin/env bash
# Installs, from Debian's packages, every component the test suite runs:
# reload targets (nginx, pgbouncer, sshd, gunicorn, mariadb, apache2, haproxy, uwsgi with python3,
# postgresql 15), Prometheus and promtool, FUSE
# filesystems (bindfs, sshfs), inotify-tools, xxhash, buildah; for the release
# check, qemu-user-static (the arm64, arm, ppc64le, s390x and riscv64 binaries), skopeo, jq and docker-registry (a
# registry on 127.0.0.1 for the install steps); for the node of .ci/cluster.sh,
# containerd, runc, etcd, the CNI plugins, iptables and openssl. Idempotent.
set -euo pipefail
pkgs=(nginx-light pgbouncer postgresql-client prometheus bindfs sshfs openssh-server openssh-client
      gunicorn mariadb-server mariadb-client
      fuse3 inotify-tools xxhash buildah busybox-static ca-certificates curl procps hyperfine
      qemu-user-static skopeo jq docker-registry python3
      containerd runc etcd-server containernetworking-plugins iptables iproute2 openssl
      apache2 haproxy uwsgi uwsgi-plugin-python3 postgresql-15 util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts services it installs; the tests run their own instances.
for s in nginx pgbouncer prometheus prometheus-node-exporter ssh docker-registry containerd etcd mariadb apache2 haproxy uwsgi postgresql; do
  systemctl stop "$s" 2>/dev/null || service "$s" stop 2>/dev/null || true
done
echo "components ready"
