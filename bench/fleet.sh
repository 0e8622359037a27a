#!/usr/bin/env bash
# fleet.sh measures what a fleet of pollreload replicas costs the file server
# they all poll: N real pollreload processes, started at once, each on its own
# counting FUSE mount of one shared tree (bench/fleet), with the kernel's
# attribute caching off (like NFS noac) and on (1 s, like actimeo=1), beside
# a poller that reads every file on every tick (bench/naive). It prints the
# table kept in bench/README.md ("Fleet").
#
# Usage: bench/fleet.sh                     the whole matrix (about 20 minutes on 2 busy cores)
#        SMOKE=1 bench/fleet.sh             5 replicas, 3 s windows (about 1 minute)
#        REPLICAS=50 TREES=kubelet CACHE=off bench/fleet.sh    a subset
#
# Environment (defaults in brackets):
#   REPLICAS    replica counts [50,100,200]
#   TREES       plain20, plain1000, kubelet [all three]
#   CACHE       off, on [off,on]
#   INTERVALS   POLL_INTERVAL per tree [plain20=1s,plain1000=30s,kubelet=1s]
#   WARMUP      after the simultaneous start, plus one interval [4s]
#   WINDOW      measured time per configuration [30s]
#   NAIVE_RUNS  configurations the naive poller also runs, N/tree/cache
#               [50/plain20/off,50/plain20/on,50/kubelet/off]; empty for none
#   BENCH_DIR   where the binaries go [bench/out]
# Needs root (or fusermount) and /dev/fuse.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BENCH_DIR:-$ROOT/bench/out}
if [[ ${SMOKE:-0} == 1 ]]; then
	: "${REPLICAS:=5}" "${WARMUP:=2s}" "${WINDOW:=3s}" "${TREES:=plain20,kubelet}"
	: "${NAIVE_RUNS:=5/plain20/off}"
fi
REPLICAS=${REPLICAS:-50,100,200}
TREES=${TREES:-plain20,plain1000,kubelet}
CACHE=${CACHE:-off,on}
INTERVALS=${INTERVALS:-plain20=1s,plain1000=30s,kubelet=1s}
WARMUP=${WARMUP:-4s}
WINDOW=${WINDOW:-30s}
NAIVE_RUNS=${NAIVE_RUNS-50/plain20/off,50/plain20/on,50/kubelet/off}

[[ -e /dev/fuse ]] || { echo "fleet.sh: /dev/fuse is missing" >&2; exit 1; }
command -v fusermount >/dev/null || command -v fusermount3 >/dev/null ||
	{ echo "fleet.sh: fusermount not installed: apt-get install -y fuse3" >&2; exit 1; }

mkdir -p "$OUT"
cd "$ROOT"
# As it ships: static, -trimpath, no race detector.
CGO_ENABLED=0 go build -trimpath -o "$OUT/pollreload" .
go build -o "$OUT/naive" ./bench/naive
go build -o "$OUT/fleet" ./bench/fleet
exec "$OUT/fleet" -pollreload "$OUT/pollreload" -naive "$OUT/naive" \
	-replicas "$REPLICAS" -trees "$TREES" -cache "$CACHE" -intervals "$INTERVALS" \
	-warmup "$WARMUP" -window "$WINDOW" -naive-runs "$NAIVE_RUNS"
