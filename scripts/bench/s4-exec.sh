# shellcheck shell=bash
# Scenario 4: exec into a running container.

scenario4() {
	local i v cpid
	log "scenario 4: exec, $RUNS runs (+$WARMUP warm-up) per variant"
	hand_bundles
	pp_run s4
	cpid=$("${P[@]}" inspect s4 | jq -r '.containers[0].pid')
	ip netns add "$HAND_NS"
	crun create --bundle "$B/bundle-crun" ppbench-x-crun </dev/null >/dev/null 2>&1
	crun start ppbench-x-crun
	pm_start s4
	for ((i = 0; i < WARMUP + RUNS; i++)); do
		while read -r v; do
			case "$v" in
			peapod) timed s4 peapod $((i >= WARMUP)) "${P[@]}" exec s4 -- /bin/true ;;
			crun) timed s4 crun $((i >= WARMUP)) crun exec ppbench-x-crun /bin/true ;;
			nsenter) timed s4 nsenter $((i >= WARMUP)) nsenter -t "$cpid" -m -u -i -n -p /bin/true ;;
			podman) timed s4 podman $((i >= WARMUP)) "${PM[@]}" exec -l /bin/true ;;
			esac
		done < <(variants_rotated "$i" peapod crun nsenter podman)
	done
	pp_rm s4
	crun delete -f ppbench-x-crun
	ip netns del "$HAND_NS"
	pm_rm s4
	table s4 "Scenario 4: exec POD -- /bin/true" peapod crun nsenter podman >>"$OUT/table.md"
}
