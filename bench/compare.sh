#!/usr/bin/env bash
# compare.sh builds benchmark trees and prints, in one run on the same data,
# pollreload's figures beside those of a reference tool (xxhsum -H1, find).
#
# Usage: bench/compare.sh            full run (about 5 minutes, ~1.5 GB of disk)
#        QUICK=1 bench/compare.sh    smaller trees and shorter windows
#
# Environment:
#   BENCH_DIR   where trees and the binary go (default bench/out, git-ignored)
#   COLD_CACHE  1: drop the page cache before every hash run (needs root);
#               default 0 hashes from a warm page cache, so the figures
#               compare hashing and syscall cost rather than the disk
#   KEEP        1: keep the trees in BENCH_DIR for the next run (default);
#               0 removes them. Trees on tmpfs are always removed.
#   ONLY        run one part: large, small, steady, idle or memory
#
# "cold" below means pollreload starts with no remembered digests (a fresh
# process), not necessarily a cold page cache. CPU and memory of the daemon
# are read from /proc/PID/stat (utime+stime) and /proc/PID/status (VmHWM,
# VmRSS) of the real binary. The daemon is never scraped inside a CPU window
# except where the table says so.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BENCH_DIR:-$ROOT/bench/out}
QUICK=${QUICK:-0}
COLD_CACHE=${COLD_CACHE:-0}
KEEP=${KEEP:-1}
PORT=${BENCH_PORT:-19533}
TCK=$(getconf CLK_TCK)

if [[ $QUICK == 1 ]]; then
	LARGE_N=4 LARGE_MB=64 IDLE_S=10 STEADY_S=5 HUGE_GB=1 MANY=20000 RUNS=3
else
	LARGE_N=4 LARGE_MB=256 IDLE_S=60 STEADY_S=10 HUGE_GB=4 MANY=100000 RUNS=5
fi

need() { command -v "$1" >/dev/null || { echo "compare.sh: $1 not installed: apt-get install -y $2" >&2; exit 1; }; }
need xxhsum xxhash
need hyperfine hyperfine
need curl curl
need go golang

log() { printf '\033[2m# %s\033[0m\n' "$*" >&2; }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$OUT"
# The 100,000-file tree and the sparse file go to tmpfs when there is one:
# making 100,000 files there takes seconds, not a minute, and reading the
# holes of a sparse file allocates no page cache. Both are removed at exit.
if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]]; then
	SCRATCH=/dev/shm/pollreload-bench
else
	SCRATCH=$OUT/scratch
fi
mkdir -p "$SCRATCH"
BIN=$OUT/pollreload
log "building $BIN"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath \
	-ldflags "-X main.commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" -o "$BIN" .)
# The floor the idle daemon is compared with: a Go program doing nothing but
# wake once a second, built the same way (bench/ticker).
TICKER=$OUT/ticker
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$TICKER" ./bench/ticker)

# ---------------------------------------------------------------- trees
# Trees are made once and reused (KEEP=1): a stamp file says they are complete.

mk_large() { # LARGE_N files of LARGE_MB random bytes
	local d=$OUT/large-${LARGE_N}x${LARGE_MB}M
	if [[ ! -e $d/.done ]]; then
		log "making $d"
		rm -rf "$d" && mkdir -p "$d/data"
		for i in $(seq 1 "$LARGE_N"); do
			head -c "${LARGE_MB}M" /dev/urandom >"$d/data/blob$i.bin"
		done
		touch "$d/.done"
	fi
	echo "$d/data"
}

mk_small() { # $1 files of 4 KiB in nested directories (10 x 10 x n/100), under $2 (default OUT)
	local n=$1 d=${2:-$OUT}/small-$1
	if [[ ! -e $d/.done ]]; then
		log "making $d"
		rm -rf "$d" && mkdir -p "$d/data"
		# One 4 KiB block of text; each file starts with its own index so no
		# two files are equal.
		local block
		block=$(head -c 3072 /dev/urandom | base64 -w0)
		local per=$((n / 100)) i=0
		for a in 0 1 2 3 4 5 6 7 8 9; do
			for b in 0 1 2 3 4 5 6 7 8 9; do
				mkdir -p "$d/data/a$a/b$b"
				for ((c = 0; c < per; c++)); do
					printf '%08d %s' "$i" "${block:9}" >"$d/data/a$a/b$b/f$c.conf"
					i=$((i + 1))
				done
			done
		done
		touch "$d/.done"
	fi
	echo "$d/data"
}

mk_configmap() { # a kubelet-style volume with 20 keys
	local d=$OUT/configmap-20
	if [[ ! -e $d/.done ]]; then
		log "making $d"
		rm -rf "$d" && mkdir -p "$d/data/..2026_11_22_00_00_00.000000001"
		local ts=..2026_11_22_00_00_00.000000001
		for i in $(seq -w 1 20); do
			printf 'key%s = %s\n' "$i" "$(head -c 600 /dev/urandom | base64 -w0)" >"$d/data/$ts/key$i.conf"
			ln -s "..data/key$i.conf" "$d/data/key$i.conf"
		done
		ln -s "$ts" "$d/data/..data"
		touch "$d/.done"
	fi
	echo "$d/data"
}

mk_huge() { # one sparse file of HUGE_GB: no disk used, every byte still read
	local d=$SCRATCH/huge-${HUGE_GB}G
	if [[ ! -e $d/.done ]]; then
		rm -rf "$d" && mkdir -p "$d/data"
		truncate -s "${HUGE_GB}G" "$d/data/disk.img"
		touch "$d/.done"
	fi
	echo "$d/data"
}

# ---------------------------------------------------------------- helpers


# hf NAME CMD...: mean wall seconds of CMD over RUNS runs (hyperfine).
hf() {
	local name=$1
	shift
	local prep=()
	if [[ $COLD_CACHE == 1 ]]; then
		prep=(--prepare "sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches'")
	else
		prep=(--warmup 1)
	fi
	hyperfine -N "${prep[@]}" --runs "$RUNS" --style none \
		--export-csv "$OUT/hf-$name.csv" "$@" >"$OUT/hf-$name.log" 2>&1 ||
		{ cat "$OUT/hf-$name.log" >&2; return 1; }
	awk -F, 'NR==2 {print $2}' "$OUT/hf-$name.csv"
}

# cpu_ticks PID: utime+stime of the whole process (all threads, dead ones
# too), in clock ticks (10 ms each).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# cpu_ns PID: time on CPU of the live threads, in nanoseconds (schedstat is
# exact where utime+stime counts whole ticks; pollreload keeps its threads).
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d\n", s}'; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
metric() { # metric NAME_WITH_LABELS: value, summed over matching series
	curl -fsS "http://127.0.0.1:$PORT/metrics" |
		awk -v m="$1" 'index($0, m) == 1 { s += $NF; found = 1 } END { if (found) printf "%.9g\n", s; else print "NA" }'
}

DAEMON_PID=
SLEEP_PID=
TICKER_PID=
stop_daemon() {
	if [[ -n $DAEMON_PID ]]; then
		kill "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
		DAEMON_PID=
	fi
}
cleanup() {
	stop_daemon
	[[ -n $SLEEP_PID ]] && kill "$SLEEP_PID" 2>/dev/null || true
	[[ -n $TICKER_PID ]] && kill "$TICKER_PID" 2>/dev/null || true
	rm -rf "$SCRATCH"
	[[ $KEEP == 1 ]] || rm -rf "$OUT"
}
trap cleanup EXIT

# A target that is never signalled (content does not change while measured),
# only so the daemon has a valid PID_FILE.
sleep 100000 &
SLEEP_PID=$!
echo "$SLEEP_PID" >"$OUT/target.pid"

# start_daemon DIR INTERVAL [VAR=VALUE...]: start pollreload over DIR and wait
# until its first scan finished.
start_daemon() {
	local dir=$1 interval=$2
	shift 2
	env -i PATH="$PATH" CONFIG_DIR="$dir" PID_FILE="$OUT/target.pid" \
		POLL_INTERVAL="$interval" METRICS_ADDR="127.0.0.1:$PORT" LOG_LEVEL=info "$@" \
		"$BIN" 2>"$OUT/daemon.log" &
	DAEMON_PID=$!
	local i
	for i in $(seq 1 600); do
		local n
		n=$(metric 'pollreload_scans_total' 2>/dev/null || echo NA)
		if [[ $n != NA && $n != 0 ]]; then return 0; fi
		kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$OUT/daemon.log" >&2; return 1; }
		sleep 0.1
	done
	echo "compare.sh: daemon over $dir never finished a scan" >&2
	cat "$OUT/daemon.log" >&2
	return 1
}

# section NAME: whether to run that part (ONLY=idle runs just one).
section() { [[ -z ${ONLY:-} || $ONLY == "$1" ]]; }

ROWS=()
row() { ROWS+=("$(printf '%s\t%s\t%s\t%s\t%s' "$@")"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "NA" }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.1f ms", s * 1000 }'; }

# ---------------------------------------------------------------- 1. large files
if section large; then

LARGE=$(mk_large)
bytes=$((LARGE_N * LARGE_MB * 1024 * 1024))
log "cold hash of $LARGE_N x $LARGE_MB MiB"
mapfile -t large_files < <(find "$LARGE" -type f | sort)
t_pr=$(hf large-pollreload "$BIN hash $LARGE")
t_xx=$(hf large-xxhsum "xxhsum -H1 ${large_files[*]}")
gbps() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.2f GB/s", b / s / 1e9 }'; }
row "cold hash ${LARGE_N} x ${LARGE_MB} MiB" "$(ms "$t_pr") ($(gbps "$t_pr"))" \
	"xxhsum -H1: $(ms "$t_xx") ($(gbps "$t_xx"))" "$(ratio "$t_xx" "$t_pr")x throughput" "goal >= 1.0x"
fi

# ---------------------------------------------------------------- 2. small files
if section small; then

SMALL=$(mk_small 10000)
find "$SMALL" -type f -print0 | sort -z >"$OUT/small.list"
log "cold hash of 10,000 x 4 KiB"
t_pr=$(hf small-pollreload "$BIN hash $SMALL")
t_xx=$(hf small-xxhsum "xargs -0 -a $OUT/small.list xxhsum -H1")
row "cold hash 10,000 x 4 KiB" "$(ms "$t_pr")" "xxhsum -H1 (xargs): $(ms "$t_xx")" \
	"$(ratio "$t_xx" "$t_pr")x throughput" "(no goal; reported)"
fi

# ---------------------------------------------------------------- 3. steady tick
if section steady; then

log "steady tick over the unchanged 10,000-file tree"
# The daemon's steady ticks run on a warm cache, so find does too.
t_find=$(COLD_CACHE=0 hf small-find "find $SMALL -type f -printf '%s %T@\n'")
start_daemon "$SMALL" 1s
sleep 2.5 # past the first scan and the racy-mtime window
s0=$(metric pollreload_scan_duration_seconds_sum)
c0=$(metric pollreload_scan_duration_seconds_count)
b0=$(metric pollreload_bytes_hashed_total)
u0=$(cpu_ticks "$DAEMON_PID") n0=$(cpu_ns "$DAEMON_PID")
sleep "$STEADY_S"
u1=$(cpu_ticks "$DAEMON_PID") n1=$(cpu_ns "$DAEMON_PID")
s1=$(metric pollreload_scan_duration_seconds_sum)
c1=$(metric pollreload_scan_duration_seconds_count)
b1=$(metric pollreload_bytes_hashed_total)
hwm=$(status_kb "$DAEMON_PID" VmHWM)
rss=$(status_kb "$DAEMON_PID" VmRSS)
stop_daemon
tick=$(awk -v a="$s0" -v b="$s1" -v c="$c0" -v d="$c1" 'BEGIN { if (d > c) print (b - a) / (d - c); else print 0 }')
read_bytes=$(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%d", b - a }')
row "steady tick, 10,000 files (mean of $((${c1%.*} - ${c0%.*})) ticks)" \
	"$(ms "$tick"), content read: $read_bytes B" "find -printf '%s %T@': $(ms "$t_find")" \
	"$(ratio "$tick" "$t_find")x time" "goal <= 1.5x, 0 B"
cpu_ms=$(((u1 - u0) * 1000 / TCK))
row "steady cost, 10,000 files, 1s, ${STEADY_S}s" "CPU $cpu_ms ms ($(((n1 - n0) / 1000000)) ms by schedstat); VmHWM $((hwm / 1024)) MB, VmRSS $((rss / 1024)) MB" \
	"peer: 3.2 s CPU per 10 s" \
	"$(awk -v a="$(((n1 - n0) / 1000000))" -v s="$STEADY_S" 'BEGIN { printf "%.0f ms per 10 s = %.2fx the peer", a * 10 / s, a * 10 / s / 3200 }')" "goal <= 300 ms / 10 s, RSS <= 20 MB"
fi

# ---------------------------------------------------------------- 4. idle ConfigMap
if section idle; then

CM=$(mk_configmap)
log "idle 20-file ConfigMap for ${IDLE_S}s, beside a bare 1 s Go ticker"
start_daemon "$CM" 1s
"$TICKER" -interval 1s &
TICKER_PID=$!
sleep 1
u0=$(cpu_ticks "$DAEMON_PID") n0=$(cpu_ns "$DAEMON_PID") t0=$(cpu_ns "$TICKER_PID")
sleep "$IDLE_S"
u1=$(cpu_ticks "$DAEMON_PID") n1=$(cpu_ns "$DAEMON_PID") t1=$(cpu_ns "$TICKER_PID")
hwm=$(status_kb "$DAEMON_PID" VmHWM)
rss=$(status_kb "$DAEMON_PID" VmRSS)
stop_daemon
kill "$TICKER_PID" 2>/dev/null || true
wait "$TICKER_PID" 2>/dev/null || true
TICKER_PID=
cpu_ms=$(((u1 - u0) * 1000 / TCK))
row "idle ConfigMap, 20 files, 1s, ${IDLE_S}s" "CPU $cpu_ms ms ($(((n1 - n0) / 1000000)) ms by schedstat); VmHWM $((hwm / 1024)) MB, VmRSS $((rss / 1024)) MB" \
	"peer: 160 ms CPU per minute" \
	"$(awk -v a="$(((n1 - n0) / 1000000))" -v s="$IDLE_S" 'BEGIN { printf "%.0f ms per minute = %.2fx the peer", a * 60 / s, a * 60 / s / 160 }')" "goal <= 20 ms / min, RSS <= 15 MB"
# The same window, so load on the machine weighs on both alike.
row "idle ratio, 20-key ConfigMap vs bare Go 1s ticker, ${IDLE_S}s" \
	"$(awk -v a="$((n1 - n0))" -v s="$IDLE_S" 'BEGIN { printf "%.1f ms CPU per minute", a / 1e6 * 60 / s }')" \
	"ticker: $(awk -v a="$((t1 - t0))" -v s="$IDLE_S" 'BEGIN { printf "%.1f ms CPU per minute", a / 1e6 * 60 / s }')" \
	"$(ratio "$((n1 - n0))" "$((t1 - t0))")x the ticker" "goal <= 1.5x"
fi

# ---------------------------------------------------------------- 5. memory with many files / one huge file
if section memory; then

MANYDIR=$(mk_small "$MANY" "$SCRATCH")
log "RSS with $MANY files"
start_daemon "$MANYDIR" 1s MAX_FILES=0
sleep 3
hwm=$(status_kb "$DAEMON_PID" VmHWM)
rss=$(status_kb "$DAEMON_PID" VmRSS)
files=$(metric pollreload_watched_files)
stop_daemon
row "memory, $MANY files" "VmHWM $((hwm / 1024)) MB, VmRSS $((rss / 1024)) MB" "watched_files $files" "" ""

log "stretching: $MANY files at POLL_INTERVAL=100ms"
start_daemon "$MANYDIR" 100ms MAX_FILES=0
sleep 5
eff=$(metric pollreload_poll_interval_seconds)
stop_daemon
stretch_log=$(grep -ci 'stretch' "$OUT/daemon.log" || true)
row "$MANY files at POLL_INTERVAL=100ms" "poll_interval_seconds $eff" "log lines mentioning stretch: $stretch_log" "" "interval stretched, said so"

HUGE=$(mk_huge)
log "RSS with one ${HUGE_GB} GiB file"
start_daemon "$HUGE" 1s
hwm=$(status_kb "$DAEMON_PID" VmHWM)
rss=$(status_kb "$DAEMON_PID" VmRSS)
hashed=$(metric pollreload_bytes_hashed_total)
stop_daemon
row "memory, one ${HUGE_GB} GiB file" "VmHWM $((hwm / 1024)) MB, VmRSS $((rss / 1024)) MB" "bytes_hashed_total $hashed" "" "flat in file size"
fi

# ---------------------------------------------------------------- table

echo
echo "machine: $(nproc) cores, $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}'), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "load average at start: $LOAD0, at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
echo "pollreload: $("$BIN" --version 2>&1 | head -1); xxhsum: $(xxhsum --version 2>&1 | head -1 | awk '{print $2}'); page cache: $([[ $COLD_CACHE == 1 ]] && echo dropped || echo warm); runs: $RUNS"
echo
{
	printf 'case\tpollreload\treference\tratio\tgoal\n'
	printf '%s\n' "${ROWS[@]}"
} | column -t -s $'\t'
