# shellcheck shell=bash
# Scenario 6: probe load (CPU of HTTP, TCP and exec probes at 1 s) and the
# exec probe's latency vs crun exec.

# s6_manifest NAME [exec]: scenario 6's pod. Container web serves HTTP and
# is probed by HTTP (readiness) and TCP (liveness); with "exec", container ex
# is probed by `cat /tmp/healthy` (liveness). All at periodSeconds 1.
s6_manifest() {
	cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
spec:
  containers:
  - name: web
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo ok >/www/index.html && exec busybox httpd -f -p 8080 -h /www"]
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
EOF
	[[ "${2:-}" == exec ]] || return 0
	cat <<EOF
  - name: ex
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "touch /tmp/healthy && exec sleep 3600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
EOF
}
s6_manifest_web() { s6_manifest "$1"; }
s6_manifest_full() { s6_manifest "$1" exec; }

# s6_ticks PID... prints the summed utime+stime+cutime+cstime of the PIDs, in
# clock ticks: a supervisor's cutime holds its reaped exec-probe helpers.
s6_ticks() {
	local p t=0 f
	for p in "$@"; do
		# Fields after "pid (comm) ": utime is the 12th, cstime the 15th.
		f=$(sed 's/^.*) //' "/proc/${p%%:*}/stat" 2>/dev/null | awk '{ print $12 + $13 + $14 + $15 }')
		t=$((t + ${f:-0}))
	done
	printf '%s\n' "$t"
}

# s6_metrics FILE PREFIX writes "container/probe_type sum_seconds count" for
# the probes of the pods named PREFIX-*, summed over pods, from `peapod
# metrics`.
s6_metrics() {
	"${P[@]}" metrics | "$BENCHTOOL" probe-metrics "$2" >"$1"
}

# s6_exec_samples TAG: interleaved `peapod exec` vs `crun exec` of the exec
# probe's command, as scenario 4 times them.
s6_exec_samples() {
	local i v
	for ((i = 0; i < WARMUP + RUNS; i++)); do
		while read -r v; do
			case "$v" in
			peapod) timed s6 "peapod-exec-$1" $((i >= WARMUP)) "${P[@]}" exec s6-probe -c ex -- cat /tmp/healthy ;;
			crun) timed s6 "crun-exec-$1" $((i >= WARMUP)) crun exec ppbench-x-crun cat /tmp/healthy ;;
			esac
		done < <(variants_rotated "$i" peapod crun)
	done >/dev/null
}

# s6_crun_paced: `crun exec` of the probe's command once a second, timed
# with nothing around it, as the supervisor runs an exec probe. On cgroup v1
# an exec's first migration after a quiet second waits for an RCU grace
# period (cgroup_threadgroup_rwsem); the interleaved samples never see that,
# each coming right after another migration (timed() moves this shell into
# a cgroup first). The supervisor's idle exec probes are compared with this.
s6_crun_paced() {
	local i t0 t1
	for ((i = 0; i < WARMUP + RUNS; i++)); do
		# The pace under test, not a wait for something.
		sleep 1
		t0=${EPOCHREALTIME/./}
		crun exec ppbench-x-crun cat /tmp/healthy >/dev/null
		t1=${EPOCHREALTIME/./}
		((i < WARMUP)) || record s6 crun-exec-paced "$t0" "$t1"
	done
}

# s6_ready NAME waits until the pod is Ready.
s6_ready() {
	"${P[@]}" wait "$1" --for=condition=Ready --timeout=120s >/dev/null || die "scenario 6: pod $1 not Ready"
}

# s6_load LABEL MANIFEST_FN PREFIX [exec]: PROBE_N pods for PROBE_SECONDS;
# prints one row of the load table. With "exec", the exec latency under load
# is sampled once the CPU window has closed, the pods still probing.
s6_load() {
	local label=$1 fn=$2 pre=$3 i c0 c1 w0 w1 facts=() sups=() helpers=()
	log "scenario 6: $label, $PROBE_N pods for $PROBE_SECONDS s"
	# s6-probe keeps its port on the bridge; the last batch's must be gone.
	wait_until 30 bridge_ports_at_most 1 || die "scenario 6: veths of the last batch still there"
	for ((i = 0; i < PROBE_N; i++)); do pp_run "$pre-$i" "$fn"; done
	for ((i = 0; i < PROBE_N; i++)); do s6_ready "$pre-$i"; done
	for ((i = 0; i < PROBE_N; i++)); do facts+=("$(pp_facts "$pre-$i")"); done
	for ((i = 0; i < PROBE_N; i++)); do sups+=("$(cut -d' ' -f2 <<<"${facts[i]}" | cut -d: -f1)"); done
	mapfile -t helpers < <(for i in $(pp_helpers "${sups[@]}"); do pid_tag "$i"; done)
	# Let the start-up settle, then count the window only.
	sleep 3
	s6_metrics "$OUT/s6-$pre-m0" "$pre"
	c0=$(s6_ticks "${sups[@]}" "${helpers[@]}")
	w0=${EPOCHREALTIME/./}
	sleep "$PROBE_SECONDS"
	c1=$(s6_ticks "${sups[@]}" "${helpers[@]}")
	w1=${EPOCHREALTIME/./}
	s6_metrics "$OUT/s6-$pre-m1" "$pre"
	"$BENCHTOOL" probe-row -label "$label" -pods "$PROBE_N" -helpers "${#helpers[@]}" -ticks "$((c1 - c0))" \
		-hz "$(getconf CLK_TCK)" -window-us "$((w1 - w0))" "$OUT/s6-$pre-m0" "$OUT/s6-$pre-m1" >>"$OUT/s6-rows"
	if [[ "${4:-}" == exec ]]; then
		s6_exec_samples load
		cp "$OUT/s6-$pre-m0" "$OUT/s6-load-m0"
		cp "$OUT/s6-$pre-m1" "$OUT/s6-load-m1"
	fi
	for ((i = 0; i < PROBE_N; i++)); do pp_rm "$pre-$i"; done
	for ((i = 0; i < PROBE_N; i++)); do
		# shellcheck disable=SC2086 # facts are words
		pp_check_gone ${facts[i]}
	done
	for i in "${helpers[@]}"; do dead "$i" || die "scenario 6: helper $i outlived its pod"; done
}

# s6_idle: the exec probe's latency with one probed pod on the machine, from
# the supervisor's metrics and as `peapod exec` vs `crun exec` by hand.
s6_idle() {
	local t0
	log "scenario 6: exec latency idle"
	pp_run s6-probe s6_manifest_full
	s6_ready s6-probe
	t0=$SECONDS
	s6_metrics "$OUT/s6-idle-m0" s6
	s6_exec_samples idle
	s6_crun_paced
	# At least 15 exec probes in the idle window.
	sleep $((15 - (SECONDS - t0) > 0 ? 15 - (SECONDS - t0) : 0))
	s6_metrics "$OUT/s6-idle-m1" s6
}

scenario6() {
	local facts
	log "scenario 6: probe load, $PROBE_N pods, ${PROBE_SECONDS} s per run"
	hand_bundles
	# The crun anchor execs the same command into a sleeping container.
	mkdir -p "$B/bundle/rootfs/tmp"
	touch "$B/bundle/rootfs/tmp/healthy"
	ip netns add "$HAND_NS"
	crun create --bundle "$B/bundle-crun" ppbench-x-crun </dev/null >/dev/null 2>&1
	crun start ppbench-x-crun
	: >"$OUT/s6-rows"
	s6_idle
	# The CLI anchor pod stays: `peapod exec s6-probe` under load too.
	facts=$(pp_facts s6-probe)
	s6_load "HTTP readiness + TCP liveness" s6_manifest_web s6w
	s6_load "HTTP + TCP + exec liveness" s6_manifest_full s6f exec
	pp_rm s6-probe
	# shellcheck disable=SC2086 # facts are words
	pp_check_gone $facts
	crun delete -f ppbench-x-crun
	ip netns del "$HAND_NS"
	{
		printf '\n### Scenario 6: probe load, %d pods, periodSeconds 1, %d s window\n\n' "$PROBE_N" "$PROBE_SECONDS"
		printf 'CPU: utime+stime+cutime+cstime of the supervisors and their peapod helpers (prober; exec helpers reaped into cutime), not the probe targets.\n\n'
		printf '| run | pods | helpers | probes/s | CPU s | %% of one core | CPU µs/probe | HTTP ms | TCP ms | exec ms |\n'
		printf '|---|---|---|---|---|---|---|---|---|---|\n'
		cat "$OUT/s6-rows"
		table s6 "Scenario 6: exec probe command by hand (cat /tmp/healthy), idle (one pod) and under the full load" \
			peapod-exec-idle crun-exec-idle
		table s6 "Scenario 6, under load" peapod-exec-load crun-exec-load
		table s6 "Scenario 6: crun exec once a second, alone (the idle anchor of the supervisor's exec probes)" crun-exec-paced
		"$BENCHTOOL" exec-latency "$OUT/s6-idle-m0" "$OUT/s6-idle-m1" "$OUT/s6-load-m0" "$OUT/s6-load-m1" \
			"$OUT/samples/s6/crun-exec-idle" "$OUT/samples/s6/crun-exec-load" "$OUT/samples/s6/crun-exec-paced"
	} >>"$OUT/table.md"
}
