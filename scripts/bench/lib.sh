# shellcheck shell=bash
# lib.sh: timing and measuring helpers for scripts/bench.sh. Samples are
# milliseconds, one per line, in $OUT/samples/<scenario>/<variant>; the
# figures and tables made of them come from benchtool ($BENCHTOOL,
# scripts/bench/benchtool).

# Times are read as ${EPOCHREALTIME/./} (wall clock, microseconds) in place:
# a function called as $(…) forks a subshell, ~0.5 ms here, and one read at
# the end of a window put that fork inside it.

# record SCENARIO VARIANT START_US END_US appends one sample in ms.
record() {
	local dir="$OUT/samples/$1" us=$(($4 - $3)) sign=""
	# The wall clock may step back; keep the sign as the sample is.
	if ((us < 0)); then sign=- us=$((-us)); fi
	mkdir -p "$dir"
	printf '%s%d.%03d\n' "$sign" $((us / 1000)) $((us % 1000)) >>"$dir/$2"
}

# table SCENARIO TITLE PEAPOD_VARIANT VARIANT... prints a markdown table of
# the scenario's samples, with peapod ÷ each other variant pair by pair, and
# the CPU-seconds per operation when cpu/<variant> was recorded.
table() {
	"$BENCHTOOL" table -samples "$OUT/samples/$1" -cpu "$OUT/cpu/$1" "${@:2}"
}

# ratio A B prints the median (min–max) of A[i] ÷ B[i], run by run.
ratio() { "$BENCHTOOL" ratio "$1" "$2"; }

# cg_usage_us CGROUP_DIR... prints the summed cgroup v2 usage_usec (cpu.stat
# exists without the cpu controller); a missing cgroup counts 0.
cg_usage_us() {
	local d total=0 u
	for d in "$@"; do
		[[ -r "$d/cpu.stat" ]] || continue
		u=$(awk '$1 == "usage_usec" { print $2 }' "$d/cpu.stat")
		total=$((total + ${u:-0}))
	done
	printf '%s\n' "$total"
}

# wait_until SECONDS CMD... polls CMD every 10 ms until it succeeds; the
# kernel gives no event for a veth dying with its netns.
wait_until() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 100; i++)); do
		"$@" && return 0
		sleep 0.01
	done
	return 1
}

# proc_mem PID... prints "rss_kib pss_kib" summed over the PIDs.
proc_mem() {
	local p rss pss r=0 s=0
	for p in "$@"; do
		rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$p/status" 2>/dev/null)
		pss=$(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
		r=$((r + ${rss:-0}))
		s=$((s + ${pss:-0}))
	done
	printf '%s %s\n' "$r" "$s"
}

# mem_available_kib prints MemAvailable.
mem_available_kib() {
	awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo
}
