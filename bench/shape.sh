#!/usr/bin/env bash
# shape.sh times the hasher on trees whose shape, not size, used to decide
# the cost (issue 21, points 1-3), side by side for two source trees:
#
#   bench/shape.sh OLD_TREE [NEW_TREE]     (NEW_TREE defaults to this checkout)
#
# OLD_TREE is a checkout of the code to compare with, e.g.
#   mkdir /tmp/old && git archive main | tar -x -C /tmp/old
# Trees (on /dev/shm when there is one):
#   fanout-N     N directories, links d_i/{a..f} -> ../d_{i+1}  (6^(N-1) paths)
#   chain-N      one file below N nested directories
#   unreadable   90,000 files beside 3,000 mode-000 directories, scanned
#                as uid 65534 (setpriv): the cost shows from the second scan
# Each run is `shapescan -n 3 TREE` under `timeout $LIMIT` (default 60 s):
# wall time per scan and the process's peak RSS (VmHWM). TREES picks the
# link and depth trees; UNREADABLE=0 leaves out the 93,000-entry one.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
OLD=${1:?usage: bench/shape.sh OLD_TREE [NEW_TREE]}
NEW=${2:-$HERE}
LIMIT=${LIMIT:-60}
BASE=$(mktemp -d "${SHAPE_DIR:-/dev/shm}/shape.XXXXXX")
trap 'chmod -R u+rwx "$BASE" 2>/dev/null; rm -rf "$BASE"' EXIT

for side in old new; do
	src=$OLD; [[ $side == new ]] && src=$NEW
	mkdir -p "$src/bench/shapescan"
	[[ -f $src/bench/shapescan/main.go ]] || cp "$HERE/bench/shapescan/main.go" "$src/bench/shapescan/"
	(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$BASE/shapescan-$side" ./bench/shapescan)
done
chmod 755 "$BASE"

python3 - "$BASE" <<'PY'
import os, sys
base = sys.argv[1]
for n in (8, 10, 13):
    root = f"{base}/fanout-{n}"
    for i in range(n):
        os.makedirs(f"{root}/d_{i:02d}")
        open(f"{root}/d_{i:02d}/conf", "w").write(f"{i}\n")
    for i in range(n - 1):
        for l in "abcdef":
            os.symlink(f"../d_{i+1:02d}", f"{root}/d_{i:02d}/{l}")
for n in (1000, 12000):
    root = f"{base}/chain-{n}"
    os.makedirs(root)
    fd = os.open(root, os.O_RDONLY)
    for _ in range(n):
        os.mkdir("dir", dir_fd=fd)
        nfd = os.open("dir", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    f = os.open("bottom.conf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(f, b"deep\n")
    os.close(f)
    os.close(fd)
root = f"{base}/unreadable"
for d in range(900):
    os.makedirs(f"{root}/d{d:03d}")
    for i in range(100):
        open(f"{root}/d{d:03d}/f{i:02d}.conf", "w").write(f"{d}.{i}\n")
for u in range(3000):
    os.makedirs(f"{root}/u{u:04d}")
PY
chmod -R go+rX "$BASE"
chmod 000 "$BASE"/unreadable/u*

run() { # side tree [as-nobody]
	local pre=()
	[[ ${3:-} == nobody ]] && pre=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	echo "== $2, $1"
	"${pre[@]}" timeout "$LIMIT" "$BASE/shapescan-$1" -n 3 "$BASE/$2" || echo "   (stopped by timeout $LIMIT s, status $?)"
}
for tree in ${TREES:-fanout-8 fanout-10 fanout-13 chain-1000 chain-12000}; do
	run old $tree
	run new $tree
done
if [[ ${UNREADABLE:-1} == 1 ]]; then
	run old unreadable nobody
	run new unreadable nobody
fi
