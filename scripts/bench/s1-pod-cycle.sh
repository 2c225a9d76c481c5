# shellcheck shell=bash
# Scenario 1: pod cycle (run + rm of a networked 1-container pod), every
# tool side by side.

s1_one() {
	local v=$1 i=$2 counted=$3 name facts
	case "$v" in
	peapod)
		name="s1-$i"
		pp_manifest "$name"
		timed s1 peapod-run "$counted" pp_start_traced "$name"
		if ((counted)); then
			# Goal 2 of issue 16: the stage that starts the supervisor and
			# the container against crun's create + start below; with the
			# cgroups stage too, as crun creates its cgroups itself.
			trace_ms "supervisor and containers" >>"$OUT/samples/s1/peapod-containers" ||
				die "scenario 1: no supervisor stage in run's trace"
			trace_ms cgroups "supervisor and containers" >>"$OUT/samples/s1/peapod-cgroups+containers" ||
				die "scenario 1: no cgroups stage in run's trace"
		fi
		facts=$(pp_facts "$name")
		timed s1 peapod-rm "$counted" pp_rm "$name"
		# shellcheck disable=SC2086 # facts are words
		pp_check_gone $facts
		;;
	peapod+limits)
		name="s1l-$i"
		pp_manifest "$name" limits_manifest
		timed s1 peapod+limits-run "$counted" pp_start "$name"
		facts=$(pp_facts "$name")
		timed s1 peapod+limits-rm "$counted" pp_rm "$name"
		# shellcheck disable=SC2086 # facts are words
		pp_check_gone $facts
		;;
	podman)
		timed s1 podman-start "$counted" pm_start "s1-$i"
		timed s1 podman-rm "$counted" pm_rm "s1-$i"
		pm_check_gone "s1-$i"
		;;
	crun+cni | runc+cni)
		timed s1 "${v}-start" "$counted" hand_start "${v%+cni}" "ppbench-${v%+cni}"
		if ((counted)); then record s1 "${v%+cni}-create+start" "$HAND_T0" "$HAND_T1"; fi
		timed s1 "${v}-rm" "$counted" hand_rm "${v%+cni}" "ppbench-${v%+cni}"
		wait_until 5 no_ports || die "$v: veth outlived CNI DEL"
		;;
	floor) timed s1 floor "$counted" floor ;;
	esac
}

# sum_phases SC OUT A B: OUT[i] = A[i] + B[i], the whole cycle; CPU likewise.
sum_phases() {
	local d="$OUT/samples/$1" c="$OUT/cpu/$1"
	"$BENCHTOOL" sum "$d/$3" "$d/$4" >"$d/$2"
	"$BENCHTOOL" sum -int "$c/$3" "$c/$4" >"$c/$2"
}

scenario1() {
	local i v
	log "scenario 1: pod cycle, $RUNS runs (+$WARMUP warm-up) per variant"
	hand_bundles
	for ((i = 0; i < WARMUP + RUNS; i++)); do
		while read -r v; do
			s1_one "$v" "$i" $((i >= WARMUP))
		done < <(variants_rotated "$i" peapod peapod+limits podman crun+cni runc+cni floor)
	done
	sum_phases s1 peapod peapod-run peapod-rm
	sum_phases s1 peapod+limits peapod+limits-run peapod+limits-rm
	sum_phases s1 podman podman-start podman-rm
	sum_phases s1 crun+cni crun+cni-start crun+cni-rm
	sum_phases s1 runc+cni runc+cni-start runc+cni-rm
	{
		table s1 "Scenario 1: pod cycle (networked pod, one sleep container: create, running, removed)" \
			peapod peapod+limits podman crun+cni runc+cni floor
		table s1 "Scenario 1, start half" peapod-run peapod+limits-run podman-start crun+cni-start runc+cni-start
		table s1 "Scenario 1, removal half" peapod-rm peapod+limits-rm podman-rm crun+cni-rm runc+cni-rm
		table s1 "Scenario 1, containers stage: run's \"supervisor and containers\" (PEAPOD_TRACE) against create + start by hand" \
			peapod-containers crun-create+start runc-create+start
		table s1 "Scenario 1, containers stage with run's \"cgroups\" stage (crun and runc create their cgroups in create)" \
			peapod-cgroups+containers crun-create+start runc-create+start
	} >>"$OUT/table.md"
}
