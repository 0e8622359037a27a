#!/usr/bin/env bash
# Runs pollreload in wrapper mode around a tiny application, edits the
# application's config three ways, and shows which edits reload it.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cp -r examples/demo/config "$work/config"
go build -o "$work/pollreload" .
conf="$work/config/app.conf"

echo ">>> starting: CONFIG_DIR=$work/config POLL_INTERVAL=200ms pollreload -- sh examples/demo/app.sh"
CONFIG_DIR="$work/config" POLL_INTERVAL=200ms SETTLE_TIME=300ms METRICS_ADDR=127.0.0.1:9533 \
  "$work/pollreload" -- sh examples/demo/app.sh "$conf" &
pid=$!
sleep 1.5

echo ">>> touch and chmod (no content change: no reload expected)"
touch "$conf"; chmod 600 "$conf"
sleep 1.5

echo ">>> editing the config (reload expected)"
echo "greeting = hello, reloaded world" > "$conf"
sleep 1.5

echo ">>> what /metrics says"
curl -fsS 127.0.0.1:9533/metrics 2>/dev/null | grep -E '^pollreload_(changes_total|reloads_total\{result="success"[,}]|watched_files)' \
  || echo "(curl not installed: skipping the metrics peek)"

echo ">>> stopping (SIGTERM is forwarded to the app)"
kill -TERM "$pid"
wait "$pid" && pid=
