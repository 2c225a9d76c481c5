# shellcheck shell=bash
# Scenario 7: the kernel floor of a pod sandbox.

scenario7() {
	local i
	log "scenario 7: kernel floor, $RUNS runs"
	for ((i = 0; i < WARMUP + RUNS; i++)); do timed s7 floor $((i >= WARMUP)) floor; done
	table s7 "Scenario 7: kernel floor (unshare --net --uts --ipc --pid --fork --mount-proc /bin/true)" floor >>"$OUT/table.md"
}
