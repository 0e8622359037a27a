# shellcheck shell=bash
# .ci/cluster/common.sh: the helpers every part of .ci/cluster.sh uses:
# timing (part, since), die, and the components it starts in the background
# (start, alive, check_components, wait_for). Sourced by .ci/cluster.sh.

times=()
t_mark=$t_start
# part records how long the part that just ended took, for the summary.
part() {
	local took
	took=$(since "$t_mark")
	t_mark=$(date +%s.%N)
	times+=("$1 $took s")
	echo "== $1 took $took s"
}
die() {
	echo "cluster.sh: $*" >&2
	exit 1
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

pids=()
names=()
# start runs a component in the background, its output in $logs/NAME.log.
start() {
	local name=$1
	shift
	# 9>&-: the run's lock must not outlive it in a component or a shim.
	"$@" >"$logs/$name.log" 2>&1 9>&- &
	pids+=($!)
	names+=("$name")
}
# alive succeeds while PID runs; an exited child that is not reaped yet (a
# zombie, which kill -0 still finds) counts as gone.
alive() {
	local st
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z ]]
}
# check_components dies naming the first component that has exited, with the
# end of its log: what it answered.
check_components() {
	local i
	for i in "${!names[@]}"; do
		alive "${pids[$i]}" && continue
		die "${names[$i]} exited during the start; the end of its log: $(tail -n 5 "$logs/${names[$i]}.log")"
	done
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
	local what=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		check_components
		sleep 0.2
	done
	die "$what: not within $secs s"
}
