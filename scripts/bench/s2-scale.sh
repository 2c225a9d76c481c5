# shellcheck shell=bash
# Scenario 2: N pods started one after another, then removed.

s2_peapod() {
	local r=$1 i
	for ((i = 0; i < SCALE_N; i++)); do pp_start "s2-$r-$i"; done
}
s2_peapod_rm() {
	local r=$1 i
	for ((i = 0; i < SCALE_N; i++)); do pp_rm "s2-$r-$i"; done
}
s2_podman() {
	local r=$1 i
	for ((i = 0; i < SCALE_N; i++)); do pm_start "s2-$r-$i"; done
}
s2_podman_rm() {
	local r=$1 i
	for ((i = 0; i < SCALE_N; i++)); do pm_rm "s2-$r-$i"; done
}

scenario2() {
	local r v i
	log "scenario 2: $SCALE_N pods one after another, then removed; $SCALE_RUNS round(s)"
	for ((r = 0; r < SCALE_RUNS; r++)); do
		while read -r v; do
			# The kernel tears netns down asynchronously: start each batch on
			# a bridge with no ports left from the last one.
			wait_until 30 no_ports || die "scenario 2: veths of the last batch still there"
			if [[ $v == peapod ]]; then
				for ((i = 0; i < SCALE_N; i++)); do pp_manifest "s2-$r-$i"; done
			fi
			timed s2 "$v-start" 1 "s2_$v" "$r"
			timed s2 "$v-rm" 1 "s2_${v}_rm" "$r"
		done < <(variants_rotated "$r" peapod podman)
	done
	wait_until 30 no_ports || die "scenario 2: veths still there"
	[[ -z "$(pm_monitors)" ]] || die "scenario 2: podman monitors left"
	{
		table s2 "Scenario 2: $SCALE_N pods started one after another (ms for all)" peapod-start podman-start
		table s2 "Scenario 2: the same $SCALE_N pods removed one after another (ms for all)" peapod-rm podman-rm
	} >>"$OUT/table.md"
}
