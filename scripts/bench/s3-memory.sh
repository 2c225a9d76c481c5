# shellcheck shell=bash
# Scenario 3: memory of the non-workload processes per running pod.

# s3_peapod PREFIX MANIFEST_FN: start MEM_N pods, measure their supervisors
# and the helpers those started (a pod with an HTTP probe has a prober).
s3_peapod() {
	local i pids=()
	for ((i = 0; i < MEM_N; i++)); do pp_run "$1-$i" "$2"; done
	for ((i = 0; i < MEM_N; i++)); do
		pids+=("$("${P[@]}" inspect "$1-$i" | jq -r .supervisorPid)")
	done
	# Let probes and the supervisors reach their steady state.
	sleep 3
	mapfile -t -O "${#pids[@]}" pids < <(pp_helpers "${pids[@]}")
	proc_mem "${pids[@]}"
	# Where one supervisor's memory goes, as the kernel and its Go runtime
	# say (issue 16): the command a user runs for it.
	"${P[@]}" metrics "$1-0" >"$R/s3-metrics-$1"
	for ((i = 0; i < MEM_N; i++)); do pp_rm "$1-$i"; done
}

s3_podman() {
	local i pids=()
	for ((i = 0; i < MEM_N; i++)); do pm_start "s3-$i"; done
	sleep 3
	# The pod's non-workload processes: two conmon and the catatonit infra.
	mapfile -t pids < <(pm_monitors)
	mapfile -t -O "${#pids[@]}" pids < <(for i in $(pm_monitors); do pgrep -P "$i" -x catatonit || true; done)
	if ((${#pids[@]} != 3 * MEM_N)); then
		ps -o pid,ppid,stat,comm,args -p "$(IFS=,; echo "${pids[*]}")" >&2 || true
		die "scenario 3: found ${#pids[@]} podman monitor processes, want $((3 * MEM_N))"
	fi
	proc_mem "${pids[@]}"
	for ((i = 0; i < MEM_N; i++)); do pm_rm "s3-$i"; done
	wait_until 10 pm_none || die "scenario 3: conmon left"
}

# s3_avail START_FN RM_FN: MemAvailable drop per pod over MEMAVAIL_N pods.
s3_avail() {
	local before after
	wait_until 30 no_ports || true
	before=$(mem_available_kib)
	"$1" avail
	sleep 3
	after=$(mem_available_kib)
	"$2" avail
	"$BENCHTOOL" mib-per-pod "$before" "$after" "$MEMAVAIL_N"
}
s3a_peapod() { local i; for ((i = 0; i < MEMAVAIL_N; i++)); do pp_run "s3a-$i"; done; }
s3a_peapod_rm() { local i; for ((i = 0; i < MEMAVAIL_N; i++)); do pp_rm "s3a-$i"; done; }
s3a_podman() { local i; for ((i = 0; i < MEMAVAIL_N; i++)); do pm_start "s3a-$i"; done; }
s3a_podman_rm() {
	local i
	for ((i = 0; i < MEMAVAIL_N; i++)); do pm_rm "s3a-$i"; done
	wait_until 10 pm_none || die "scenario 3: conmon left"
}

# s3_split PREFIX prints the split of pod PREFIX-0's supervisor memory from
# its `peapod metrics` (saved by s3_peapod): the kernel's kinds, threads,
# the Go runtime's classes and goroutines.
s3_split() {
	# shellcheck disable=SC2016 # backquotes are markdown
	printf '\nOne supervisor of the %d (pod %s-0), `peapod metrics %s-0`, KiB (threads and goroutines: counts):\n\n' "$MEM_N" "$1" "$1"
	printf '| what | value |\n|---|---|\n'
	awk '
		/^peapod_pod_process_memory_bytes\{/ && /process="peapod-supervisor"/ {
			match($0, /kind="[^"]*"/); k = substr($0, RSTART + 6, RLENGTH - 7)
			printf "| kernel: %s | %.0f |\n", k, $NF / 1024 }
		/^peapod_pod_process_threads\{/ && /process="peapod-supervisor"/ { printf "| kernel: threads | %d |\n", $NF }
		/^peapod_supervisor_go_memory_bytes\{/ {
			match($0, /class="[^"]*"/); c = substr($0, RSTART + 7, RLENGTH - 8)
			printf "| Go: %s | %.0f |\n", c, $NF / 1024 }
		/^peapod_supervisor_goroutines\{/ { printf "| Go: goroutines | %d |\n", $NF }
	' "$R/s3-metrics-$1"
}

scenario3() {
	local pp ppp pm a_pp a_pm
	log "scenario 3: memory per pod, N=$MEM_N; MemAvailable at N=$MEMAVAIL_N"
	read -r -a pp < <(s3_peapod s3 manifest)
	read -r -a ppp < <(s3_peapod s3p probe_manifest)
	read -r -a pm < <(s3_podman)
	a_pp=$(s3_avail s3a_peapod s3a_peapod_rm)
	a_pm=$(s3_avail s3a_podman s3a_podman_rm)
	{
		printf '\n### Scenario 3: memory of the non-workload processes per running 1-container pod\n\n'
		printf '| variant | pods | VmRSS MiB/pod | Pss MiB/pod |\n|---|---|---|---|\n'
		"$BENCHTOOL" mem-row "peapod (supervisor)" "$MEM_N" "${pp[0]}" "${pp[1]}"
		"$BENCHTOOL" mem-row "peapod with TCP+HTTP probes (supervisor + any peapod helper; plain HTTP starts none)" "$MEM_N" "${ppp[0]}" "${ppp[1]}"
		"$BENCHTOOL" mem-row "podman (2 × conmon + catatonit)" "$MEM_N" "${pm[0]}" "${pm[1]}"
		"$BENCHTOOL" mem-ratio "peapod ÷ podman" "${pp[0]}" "${pm[0]}" "${pp[1]}" "${pm[1]}"
		printf '\nMemAvailable drop per pod at N=%d (whole machine, workload included): peapod %s MiB, podman %s MiB.\n' \
			"$MEMAVAIL_N" "$a_pp" "$a_pm"
		s3_split s3
	} >>"$OUT/table.md"
}
