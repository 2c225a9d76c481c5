# shellcheck shell=bash
# Scenario 5: pod network setup + teardown (timed by benchtool net).

scenario5() {
	local v ms cni
	log "scenario 5: pod network setup + teardown, $RUNS runs (+$WARMUP warm-up) per variant"
	# provision.sh installs peapod-cni next to peapod (build_peapod's
	# fallback too); benchtool net runs it and the bridge plugin through libcni.
	cni=$(command -v peapod-cni) || die "scenario 5: peapod-cni is not installed"
	mkdir -p "$OUT/samples/s5"
	# A file, not a pipe: a failed benchtool net (its cleanup check included)
	# must fail the run.
	"$BENCHTOOL" net -runs "$RUNS" -warmup "$WARMUP" -dir "$R/net" -peapod-cni "$cni" >"$OUT/s5-raw" ||
		die "scenario 5: benchtool net failed"
	while read -r v ms; do
		echo "$ms" >>"$OUT/samples/s5/$v"
	done <"$OUT/s5-raw"
	{
		table s5 "Scenario 5: pod network, netns created → connected → disconnected → host veth gone" \
			peapod cni-bridge kernel-floor floor-unpin peapod-cni-libcni bridge-libcni
		printf '\nkernel-floor: a bare veth pair (peer born in the netns) created and its host end deleted; floor-unpin: the same pair left to die with the netns, timed to its RTM_DELLINK.\n'
		printf '\npeapod-cni through libcni ÷ bridge through libcni (median of pairs, min–max): %s\n' \
			"$(ratio "$OUT/samples/s5/peapod-cni-libcni" "$OUT/samples/s5/bridge-libcni")"
		printf '\nkernel-floor ÷ cni-bridge (median of pairs, min–max): %s\n' \
			"$(ratio "$OUT/samples/s5/kernel-floor" "$OUT/samples/s5/cni-bridge")"
	} >>"$OUT/table.md"
}
