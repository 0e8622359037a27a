# shellcheck shell=bash
# .ci/cluster/images.sh: every image the node runs, built here with buildah
# (no registry is reachable) and saved as archives for containerd: pollreload
# (.ci/image.sh), pause, nginx from the host's binary and libraries, and the
# wrapper-mode app. Sourced by .ci/cluster.sh.

# ------------------------------------------------------------------ images
log "images"
if ! rev=$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.revision"}}' "$built_image" 2>/dev/null) ||
	! git cat-file -e "$rev^{commit}" 2>/dev/null ||
	! git diff --quiet "$rev" -- Dockerfile go.mod go.sum $(git ls-files '*.go' | grep -v '^\.ci/'); then
	log "building $built_image from the Dockerfile (.ci/image.sh)"
	bash .ci/image.sh
else
	log "$built_image is current (built from $rev)"
fi
buildah tag "$built_image" "$pollreload_image"
images_built+=("$pollreload_image")

# new_image commits rootfs $2 as image $1 with the buildah config flags after it.
new_image() {
	local name=$1 root=$2 ctr
	shift 2
	ctr=$(buildah from scratch)
	buildah_ctrs+=("$ctr")
	buildah copy --quiet "$ctr" "$root" / >/dev/null
	buildah config "$@" "$ctr"
	buildah rmi "$name" >/dev/null 2>&1 || true
	buildah commit --quiet --rm "$ctr" "$name" >/dev/null
	unset 'buildah_ctrs[-1]'
	images_built+=("$name")
}
img=$state/images
mkdir -p "$img"

root=$img/pause-root
mkdir -p "$root"
cp "$bin/pause" "$root/pause"
new_image "$pause_image" "$root" --entrypoint '["/pause"]' --user 65535:65535

# nginx: the host's Debian nginx with the shared libraries ldd names, and a
# configuration laid out like nginxinc/nginx-unprivileged's (UID 101, port
# 8080, pid and temp files in /tmp, conf.d included).
root=$img/nginx-root
mkdir -p "$root"/{usr/sbin,etc/nginx/conf.d,tmp}
cp /usr/sbin/nginx "$root/usr/sbin/nginx"
for lib in $(ldd /usr/sbin/nginx | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
	cp --parents -L "$lib" "$root"
done
cp /etc/nginx/mime.types "$root/etc/nginx/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnginx:x:101:101:nginx:/nonexistent:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnginx:x:101:\n' >"$root/etc/group"
cat >"$root/etc/nginx/nginx.conf" <<'EOF'
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path /tmp/client_body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    include /etc/nginx/conf.d/*.conf;
}
EOF
new_image "$nginx_image" "$root" --user 101:101 --port 8080 \
	--entrypoint '["/usr/sbin/nginx", "-e", "stderr", "-g", "daemon off;"]'

# wrapper: pollreload's image plus busybox and a small app that serves
# /config/message over HTTP, renders it again on SIGHUP, and leaves an orphan.
root=$img/wrapper-root
mkdir -p "$root"/{bin,app}
cp /bin/busybox "$root/bin/busybox"
for applet in sh cat sleep httpd mkdir kill ps; do ln -s busybox "$root/bin/$applet"; done
cat >"$root/app/run.sh" <<'EOF'
#!/bin/sh
# The app pollreload wraps: busybox httpd serves /tmp/www; SIGHUP renders the
# page again from /config/message. At start it leaves one orphan: a
# subshell's child that outlives its parent and so is handed to PID 1.
reloads=0
render() { printf '%s\nreloads=%d\n' "$(cat /config/message)" "$reloads" >/tmp/www/index.html; }
mkdir -p /tmp/www
render
trap 'reloads=$((reloads + 1)); render' HUP
trap 'kill $httpd 2>/dev/null; exit 0' TERM INT
httpd -f -p 8080 -h /tmp/www &
httpd=$!
(sh -c 'sleep 1; read -r _ _ _ ppid _ </proc/$$/stat; echo "$$ $ppid" >/tmp/orphan; sleep 2' &)
while :; do
	sleep 1 &
	wait $!
done
EOF
chmod 755 "$root/app/run.sh"
ctr=$(buildah from --pull=never "$pollreload_image")
buildah_ctrs+=("$ctr")
buildah copy --quiet "$ctr" "$root" / >/dev/null
buildah config --entrypoint '["/pollreload", "--", "/bin/sh", "/app/run.sh"]' "$ctr"
buildah rmi "$wrapper_image" >/dev/null 2>&1 || true
buildah commit --quiet --rm "$ctr" "$wrapper_image" >/dev/null
unset 'buildah_ctrs[-1]'
images_built+=("$wrapper_image")

for name in "$pollreload_image" "$pause_image" "$nginx_image" "$wrapper_image"; do
	buildah push --quiet "$name" "docker-archive:$img/$(basename "${name%%:*}").tar:$name" >/dev/null
done
part "images"
