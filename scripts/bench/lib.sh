# shellcheck shell=bash
# lib.sh: timing, statistics and table helpers for scripts/bench.sh.
# Samples are milliseconds, one per line, in $OUT/samples/<scenario>/<variant>.

# now_us prints a monotonic-enough wall clock in microseconds without a fork.
now_us() {
	local t=${EPOCHREALTIME/./}
	printf '%s\n' "$t"
}

# record SCENARIO VARIANT START_US END_US appends one sample in ms.
record() {
	local dir="$OUT/samples/$1"
	mkdir -p "$dir"
	awk -v a="$3" -v b="$4" 'BEGIN { printf "%.3f\n", (b - a) / 1000 }' >>"$dir/$2"
}

# stats FILE prints "n min median max" of a sample file.
stats() {
	sort -g "$1" | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "0 - - -"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%d %.1f %.1f %.1f\n", NR, v[1], m, v[NR] }'
}

# pair_ratio A B prints the median (min–max) of A[i] ÷ B[i], run by run.
pair_ratio() {
	paste "$1" "$2" | awk '$2 > 0 { print $1 / $2 }' | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "-"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.3f (%.3f–%.3f)\n", m, v[1], v[NR] }'
}

# table SCENARIO TITLE PEAPOD_VARIANT VARIANT... prints a markdown table of
# the scenario's samples, with peapod ÷ each other variant pair by pair, and
# the CPU-seconds per operation when cpu/<variant> was recorded.
table() {
	local sc=$1 title=$2 ref=$3 dir="$OUT/samples/$1" v n mn md mx ratio cpu
	shift 3
	printf '\n### %s\n\n' "$title"
	printf '| variant | runs | min ms | median ms | max ms | CPU ms/op | peapod ÷ variant (median of pairs, min–max) |\n'
	printf '|---|---|---|---|---|---|---|\n'
	for v in "$ref" "$@"; do
		[[ -s "$dir/$v" ]] || continue
		read -r n mn md mx < <(stats "$dir/$v")
		ratio="—"
		if [[ "$v" != "$ref" && -s "$dir/$ref" ]]; then
			ratio=$(pair_ratio "$dir/$ref" "$dir/$v")
		fi
		cpu="—"
		if [[ -s "$OUT/cpu/$sc/$v" ]]; then
			cpu=$(awk -v n="$n" '{ s += $1 } END { printf "%.1f", s / 1000 / (n ? n : 1) }' "$OUT/cpu/$sc/$v")
		fi
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$v" "$n" "$mn" "$md" "$mx" "$cpu" "$ratio"
	done
}

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
