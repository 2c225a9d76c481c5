# shellcheck shell=bash
# Scenario 9: the CRI anchor (issue 15). The same crictl cycle (runp,
# create, start, stopp, rmp of a one-container busybox pod) against
# `peapod cri` and against Debian's containerd with its built-in CRI plugin
# and runc, both private daemons of the bench on roots, sockets, bridges
# and subnets of their own; then each daemon's memory idle and per running
# pod. Images are local on both sides (containerd's sandbox image is a
# busybox `sleep` stand-in for pause, imported with ctr): nothing is pulled.

readonly CRICTL_VERSION=v1.37.0 CRI_N=${BENCH_CRI_N:-10}
# The pause stand-in's command, by which its processes are found.
readonly PAUSE_ARGS='["/bin/sleep","2147483647"]'

# s9_vars sets the scenario's paths (B and R are set after the sourcing).
s9_vars() {
	C9=$B/cri C9R=$R/cri
	PCRI=(peapod --root "$C9/peapod" --run-root "$C9R/peapod" --bridge ppbcri0 --subnet 10.238.0.0/16)
	CTRD_SOCK=$C9R/containerd/containerd.sock PCRI_SOCK=$C9R/peapod.sock
	PAUSE_IMAGE=localhost/ppbench-pause:latest
	CRICTL=${PEAPOD_TOOLS:-/root/.cache/peapod-tools}/crictl
	# The cgroup parent peapod-<rootid> of the CRI root's pods, as
	# runtime/layout names it: for the CPU figures and the cleanup check.
	printf '%s' "$C9/peapod" | sha256sum | cut -c1-6 >"$OUT/rootid-cri"
}

# cri VARIANT ARGS... runs crictl against the variant's daemon.
cri() {
	local v=peapod-cri
	if [[ "$1" == containerd* ]]; then v=containerd; fi
	"$CRICTL" --config "$C9/crictl-$v.yaml" "${@:2}"
}

# s9_crictl builds crictl into the tools cache as cri/crictl_test.go does,
# unless it is there.
s9_crictl() {
	[[ -x "$CRICTL" ]] && return 0
	log "building crictl $CRICTL_VERSION into $(dirname "$CRICTL")"
	(cd /tmp && GOBIN=$(dirname "$CRICTL") CGO_ENABLED=0 go install "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION")
}

# s9_archive OUT REF ENTRYPOINT_JSON writes the bench's busybox rootfs as a
# one-layer docker archive (what `ctr images import` reads) named REF.
s9_archive() {
	local d=$C9/archive diff cfg
	rm -rf "$d"
	mkdir -p "$d"
	cp "$B/busybox.tar" "$d/layer.tar"
	diff=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
	jq -n --arg diff "sha256:$diff" --arg arch "$(dpkg --print-architecture)" --argjson ep "$3" \
		'{architecture: $arch, os: "linux", config: {Entrypoint: $ep, Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}, rootfs: {type: "layers", diff_ids: [$diff]}}' >"$d/config.json"
	cfg=$(sha256sum "$d/config.json" | cut -d' ' -f1)
	mv "$d/config.json" "$d/$cfg.json"
	jq -n --arg c "$cfg.json" --arg ref "$2" '[{Config: $c, RepoTags: [$ref], Layers: ["layer.tar"]}]' >"$d/manifest.json"
	tar -C "$d" -cf "$1" manifest.json "$cfg.json" layer.tar
	rm -rf "$d"
}

# s9_configs writes the pod and container configs, one pod config per
# daemon and pod (the log directory is per daemon): the same sandbox a
# kubelet asks for a BestEffort pod, cgroupfs naming.
s9_configs() {
	local v i
	for v in peapod-cri containerd; do
		for i in c $(seq 0 $((CRI_N - 1))); do
			mkdir -p "$C9/logs/$v-$i"
			jq -n --arg name "s9-$i" --arg uid "ppbench-s9-uid-$i" --arg logs "$C9/logs/$v-$i" \
				--arg parent "/ppbench-s9pods/besteffort/pod-$v-$i" \
				'{metadata: {name: $name, namespace: "default", uid: $uid, attempt: 0}, hostname: $name,
				  log_directory: $logs, linux: {cgroup_parent: $parent}}' >"$C9/pod-$v-$i.json"
		done
	done
	# crictl's own configuration, so it reads no /etc/crictl.yaml.
	printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n' "$PCRI_SOCK" "$PCRI_SOCK" >"$C9/crictl-peapod-cri.yaml"
	printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n' "$CTRD_SOCK" "$CTRD_SOCK" >"$C9/crictl-containerd.yaml"
	jq -n --arg image "$IMAGE" '{metadata: {name: "c"}, image: {image: $image}, command: ["sleep", "3600"],
		log_path: "c.log", linux: {}}' >"$C9/container.json"
}

# s9_containerd_config writes containerd's configuration and CNI conflist:
# everything under the bench's roots, the CRI plugin with runc, no opt
# plugin (it would make /opt/containerd).
s9_containerd_config() {
	mkdir -p "$C9/containerd-cni" "$C9/tmp"
	cat >"$C9/containerd.toml" <<EOF
version = 2
root = "$C9/containerd"
state = "$C9R/containerd"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # CAP_SYS_RESOURCE is missing here: without this every runc start fails.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      # runc's state, by default under /run/containerd/runc.
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$C9R/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$C9/containerd-cni"
EOF
	cat >"$C9/containerd-cni/10-ppbench.conflist" <<EOF
{"cniVersion":"0.4.0","name":"ppbench-ctrd","plugins":[{"type":"bridge","bridge":"ppbctrd0","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","dataDir":"$C9/containerd-ipam","routes":[{"dst":"0.0.0.0/0"}],"ranges":[[{"subnet":"10.237.0.0/16","gateway":"10.237.0.1"}]]}}]}
EOF
}

# s9_daemon VARIANT starts the variant's daemon in a v2 cgroup of its own
# (ppbench-crid-VARIANT, where its shims or supervisors start too); its
# PID goes to $OUT/cri-VARIANT.pid, which cleanup kills.
s9_daemon() {
	local v=$1
	mkdir -p "$C9R"
	cg_enter "crid-$v"
	case "$v" in
	peapod-cri)
		# PEAPOD_TRACE: each sandbox's run and rm steps, read below.
		PEAPOD_TRACE=1 "${PCRI[@]}" cri --listen "$PCRI_SOCK" >"$OUT/cri-peapod-cri.log" 2>&1 &
		;;
	containerd)
		# Its overlay unpacks mount under TMPDIR.
		TMPDIR=$C9/tmp containerd --config "$C9/containerd.toml" >"$OUT/cri-containerd.log" 2>&1 &
		;;
	esac
	echo $! >"$OUT/cri-$v.pid"
	cg_leave
	wait_until 30 s9_serving "$v" || die "$v's CRI did not start: $(tail -20 "$OUT/cri-$v.log")"
}
s9_serving() { cri "$1" version >/dev/null 2>&1; }

# s9_images gives each daemon the busybox image (and containerd its pause).
s9_images() {
	"${PCRI[@]}" image import "$B/busybox.tar" --name "$IMAGE" >/dev/null
	s9_archive "$C9/busybox-docker.tar" "$IMAGE" null
	s9_archive "$C9/pause-docker.tar" "$PAUSE_IMAGE" "$PAUSE_ARGS"
	ctr --address "$CTRD_SOCK" -n k8s.io images import "$C9/busybox-docker.tar" >/dev/null
	ctr --address "$CTRD_SOCK" -n k8s.io images import "$C9/pause-docker.tar" >/dev/null
	# No pull may happen: both images must be there.
	cri containerd inspecti "$PAUSE_IMAGE" >/dev/null || die "containerd does not see $PAUSE_IMAGE"
	cri containerd inspecti "$IMAGE" >/dev/null || die "containerd does not see $IMAGE"
	cri peapod-cri inspecti "$IMAGE" >/dev/null || die "peapod cri does not see $IMAGE"
}

# The cycle's steps; S9_POD and S9_CTR carry the ids between them.
s9_runp() { S9_POD=$(cri "$1" runp "$C9/pod-$1-${2:-c}.json"); }
s9_create() { S9_CTR=$(cri "$1" create --no-pull "$S9_POD" "$C9/container.json" "$C9/pod-$1-${2:-c}.json"); }
s9_start() { cri "$1" start "$S9_CTR" >/dev/null; }
s9_stopp() { cri "$1" stopp "$S9_POD" >/dev/null; }
s9_rmp() { cri "$1" rmp "$S9_POD" >/dev/null; }
s9_version() { cri "$1" version >/dev/null; }

readonly S9_STEPS=(runp create start stopp rmp)

# s9_cycle VARIANT COUNTED: one pod's cycle, each step timed on its own,
# then `crictl version` (crictl's own start and one RPC: the floor of
# every step). A pod must be gone afterwards.
s9_cycle() {
	local v=$1 c=$2 step
	for step in "${S9_STEPS[@]}" version; do
		timed s9 "$v-$step" "$c" "s9_$step" "$v"
	done
	[[ -z "$(cri "$v" pods -q)" ]] || die "scenario 9: $v: a pod outlived rmp"
}

# s9_sum VARIANT: the whole cycle, step by step summed (CPU likewise).
s9_sum() {
	local d="$OUT/samples/s9" c="$OUT/cpu/s9" step
	cp "$d/$1-runp" "$d/$1"
	cp "$c/$1-runp" "$c/$1"
	for step in "${S9_STEPS[@]:1}"; do
		"$BENCHTOOL" sum "$d/$1" "$d/$1-$step" >"$d/$1.tmp" && mv "$d/$1.tmp" "$d/$1"
		"$BENCHTOOL" sum -int "$c/$1" "$c/$1-$step" >"$c/$1.tmp" && mv "$c/$1.tmp" "$c/$1"
	done
}

# s9_pod_pids VARIANT prints the PIDs of the per-pod processes that are
# not the workload: peapod's supervisors (and any helper they started);
# containerd's shims and the pause stand-ins they started.
s9_pod_pids() {
	local p sups=()
	case "$1" in
	peapod-cri)
		mapfile -t sups < <(pgrep -f "/peapod-supervisor [a-z-]* $C9R/peapod/" || true)
		printf '%s\n' "${sups[@]}"
		pp_helpers "${sups[@]}"
		;;
	containerd)
		for p in $(pgrep -f "^/usr/bin/containerd-shim-runc-v2 .*-address $CTRD_SOCK" || true); do
			echo "$p"
			pgrep -P "$p" -f "^/bin/sleep 2147483647\$" || true
		done
		;;
	esac
}

# s9_mem VARIANT prints "IDLE_RSS IDLE_PSS PODS_RSS PODS_PSS" in KiB: the
# daemon idle, and with CRI_N pods running the daemon's growth plus the
# per-pod processes (workloads excluded).
s9_mem() {
	local v=$1 pid i idle now pods ids=() pids=()
	pid=$(cat "$OUT/cri-$v.pid")
	sleep 2
	read -r -a idle < <(proc_mem "$pid")
	for ((i = 0; i < CRI_N; i++)); do
		s9_runp "$v" "$i"
		s9_create "$v" "$i"
		s9_start "$v"
		ids+=("$S9_POD")
	done
	# Let the shims, supervisors and daemons settle.
	sleep 3
	read -r -a now < <(proc_mem "$pid")
	mapfile -t pids < <(s9_pod_pids "$v")
	local want=$CRI_N
	[[ "$v" == containerd ]] && want=$((2 * CRI_N))
	if ((${#pids[@]} < want)); then
		die "scenario 9: found ${#pids[@]} per-pod processes of $v, want at least $want"
	fi
	read -r -a pods < <(proc_mem "${pids[@]}")
	for i in "${ids[@]}"; do
		cri "$v" stopp "$i" >/dev/null
		cri "$v" rmp "$i" >/dev/null
	done
	echo "${idle[0]} ${idle[1]} $((now[0] - idle[0] + pods[0])) $((now[1] - idle[1] + pods[1])) ${#pids[@]}"
}

# s9_trace prints the median of each step of peapod's sandbox run and rm
# over the cycles' sandboxes (s9-c-*), from the PEAPOD_TRACE lines of the
# daemon's log, as a markdown list.
s9_trace() {
	local op
	for op in run rm; do
		awk -v op="$op" '$1 == "trace:" && $2 == op && $3 ~ /^default\/s9-c-[0-9a-f]+:$/ {
			step = $4; for (i = 5; i < NF - 1; i++) step = step " " $i
			if (!(step in n)) order[++steps] = step
			v[step, ++n[step]] = $(NF - 1)
		}
		END {
			if (!steps) exit
			printf "- peapod cri, sandbox %s (median ms per step over %d sandboxes):", op, n[order[1]]
			for (s = 1; s <= steps; s++) {
				k = order[s]; m = n[k]
				for (i = 1; i <= m; i++) a[i] = v[k, i]
				# insertion sort: a few dozen samples
				for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
				printf " %s %.1f%s", k, (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2, (s < steps) ? ";" : ""
			}
			printf "\n"
		}' "$OUT/cri-peapod-cri.log"
	done
}

scenario9() {
	local i v pp ct
	[[ "$CRI_N" =~ ^[1-9][0-9]*$ ]] || die "BENCH_CRI_N must be a positive number of pods, got '$CRI_N'"
	s9_vars
	log "scenario 9: crictl cycle against peapod cri and containerd's CRI, $RUNS runs (+$WARMUP warm-up) per variant; memory at N=$CRI_N"
	ensure_packages containerd
	s9_crictl
	[[ -e /run/containerd ]] || S9_RUN_CONTAINERD_NEW=1
	mkdir -p "$C9"
	s9_configs
	s9_containerd_config
	s9_daemon peapod-cri
	s9_daemon containerd
	s9_images
	for ((i = 0; i < WARMUP + RUNS; i++)); do
		while read -r v; do
			s9_cycle "$v" $((i >= WARMUP))
		done < <(variants_rotated "$i" peapod-cri containerd)
	done
	s9_sum peapod-cri
	s9_sum containerd
	read -r -a pp < <(s9_mem peapod-cri)
	read -r -a ct < <(s9_mem containerd)
	{
		printf '\n- scenario 9: %s; %s; crictl %s; pause stand-in: a busybox sleep (static)\n' \
			"$(containerd --version | awk '{ print $1, $3 }')" "$(runc --version | head -1)" "$CRICTL_VERSION"
		table s9 "Scenario 9: crictl runp + create + start + stopp + rmp of a one-container busybox pod (the whole cycle)" \
			peapod-cri containerd
		table s9 "Scenario 9, runp (RunPodSandbox)" peapod-cri-runp containerd-runp
		table s9 "Scenario 9, create (CreateContainer)" peapod-cri-create containerd-create
		table s9 "Scenario 9, start (StartContainer)" peapod-cri-start containerd-start
		table s9 "Scenario 9, stopp (StopPodSandbox)" peapod-cri-stopp containerd-stopp
		table s9 "Scenario 9, rmp (RemovePodSandbox)" peapod-cri-rmp containerd-rmp
		table s9 "Scenario 9, crictl version (crictl's own start and one RPC: every step's floor)" peapod-cri-version containerd-version
		printf '\n%s\n' "$(s9_trace)"
		printf '\n### Scenario 9: memory of the CRI daemons, idle and per running 1-container pod (N=%d)\n\n' "$CRI_N"
		printf '| variant | pods | VmRSS MiB/pod | Pss MiB/pod |\n|---|---|---|---|\n'
		"$BENCHTOOL" mem-row "peapod cri, daemon idle" 1 "${pp[0]}" "${pp[1]}"
		"$BENCHTOOL" mem-row "containerd, daemon idle" 1 "${ct[0]}" "${ct[1]}"
		"$BENCHTOOL" mem-ratio "idle: peapod ÷ containerd" "${pp[0]}" "${ct[0]}" "${pp[1]}" "${ct[1]}"
		"$BENCHTOOL" mem-row "peapod cri per pod (daemon's growth + supervisor; ${pp[4]} processes)" "$CRI_N" "${pp[2]}" "${pp[3]}"
		"$BENCHTOOL" mem-row "containerd per pod (daemon's growth + shim + pause; ${ct[4]} processes)" "$CRI_N" "${ct[2]}" "${ct[3]}"
		"$BENCHTOOL" mem-ratio "per pod: peapod ÷ containerd" "${pp[2]}" "${ct[2]}" "${pp[3]}" "${ct[3]}"
	} >>"$OUT/table.md"
	s9_cleanup
}

# s9_cleanup stops both daemons and whatever they left, by PID; run by the
# scenario and again by the harness's cleanup (idempotent).
s9_cleanup() {
	local v pid p shims=()
	[[ -n "${C9:-}" ]] || return 0
	for v in peapod-cri containerd; do
		[[ -f "$OUT/cri-$v.pid" ]] || continue
		pid=$(cat "$OUT/cri-$v.pid")
		# The daemon removes its pods (and containerd's shims exit with them).
		if [[ -x "$CRICTL" ]] && ! dead "$pid"; then
			cri "$v" rmp -a -f >/dev/null 2>&1 || true
		fi
		kill "$pid" 2>/dev/null || true
		wait_until 10 dead "$pid" || kill -9 "$pid" 2>/dev/null || true
		rm -f "$OUT/cri-$v.pid"
	done
	# What the daemons did not remove: peapod's pods through its CLI, the
	# shims of our containerd (they name its socket) by PID, and their
	# children.
	if [[ -d "$C9/peapod" ]]; then
		"${PCRI[@]}" ps -A -o name 2>/dev/null | while read -r p; do "${PCRI[@]}" rm -f "${p#pod/}" >/dev/null 2>&1; done
		"${PCRI[@]}" net rm >/dev/null 2>&1 || true
	fi
	mapfile -t shims < <(pgrep -f "containerd-shim-runc-v2 .*-address $CTRD_SOCK" || true)
	for p in "${shims[@]}"; do
		pgrep -P "$p" | xargs -r kill -9 2>/dev/null
		kill -9 "$p" 2>/dev/null || true
	done
	# Shims' sockets are under /run/containerd/s whatever the state dir:
	# that directory goes if this scenario made it and left it empty.
	if [[ -n "${S9_RUN_CONTAINERD_NEW:-}" ]]; then
		rmdir /run/containerd/s /run/containerd 2>/dev/null || true
	fi
}
