# shellcheck shell=bash
# tools.sh: how scripts/bench.sh drives each tool: peapod, podman, crun and
# runc with the CNI plugins by hand, the kernel floor; and how it charges
# their CPU time.

# ---------------------------------------------------------------- CPU

# cg_enter VARIANT moves this shell into a v2 cgroup of its own, so the CLIs,
# monitors and workloads it starts are charged there (cpu.stat exists without
# the cpu controller); cg_leave moves it back.
cg_enter() {
	mkdir -p "$CGU/ppbench-$1"
	echo "$BASHPID" >"$CGU/ppbench-$1/cgroup.procs"
}
cg_leave() {
	[[ -n "${CG_HOME:-}" ]] || return 0
	echo "$BASHPID" >"$CGU${CG_HOME%/}/cgroup.procs" 2>/dev/null || true
}

# cpu_dirs VARIANT names the v2 cgroups the variant's work is charged to:
# ours, plus where a runtime moves its containers on the unified hierarchy.
cpu_dirs() {
	echo "$CGU/ppbench-$1"
	case "$1" in
	podman*) echo "$CGU/libpod_parent" ;;
	crun*) echo "$CGU/ppbench-rt-crun" ;;
	runc*) echo "$CGU/ppbench-rt-runc" ;;
	# Scenario 9: the daemon's cgroup (where its supervisors or shims start)
	# and where its pods' cgroups go.
	peapod-cri*) printf '%s\n' "$CGU/ppbench-crid-peapod-cri" "$CGU/peapod-$(cat "$OUT/rootid-cri")" ;;
	containerd*) printf '%s\n' "$CGU/ppbench-crid-containerd" "$CGU/ppbench-s9pods" ;;
	esac
}

# timed SCENARIO VARIANT COUNTED CMD... runs CMD in the variant's cgroup and
# records its wall time, and CPU time when counted.
timed() {
	local sc=$1 v=$2 counted=$3 t0 t1 c0 c1
	shift 3
	local -a dirs
	mapfile -t dirs < <(cpu_dirs "$v")
	cg_enter "$v"
	c0=$(cg_usage_us "${dirs[@]}")
	t0=${EPOCHREALTIME/./}
	"$@"
	t1=${EPOCHREALTIME/./}
	c1=$(cg_usage_us "${dirs[@]}")
	cg_leave
	((counted)) || return 0
	record "$sc" "$v" "$t0" "$t1"
	mkdir -p "$OUT/cpu/$sc"
	echo $((c1 - c0)) >>"$OUT/cpu/$sc/$v"
}

# ---------------------------------------------------------------- tools

manifest() {
	cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
spec:
  containers:
  - name: c
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
EOF
}

# limits_manifest NAME: manifest's pod with CPU and memory limits, so scenario 1
# shows what the resource writes (pod and container cgroup) cost a cycle.
limits_manifest() {
	manifest "$1"
	cat <<EOF
    resources:
      limits: {cpu: 500m, memory: 64Mi}
EOF
}

# probe_manifest NAME: a pod whose container serves HTTP and is probed by TCP
# and HTTP, for scenario 3's second peapod row.
probe_manifest() {
	cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
spec:
  containers:
  - name: c
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["busybox", "httpd", "-f", "-p", "8080", "-h", "/"]
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
EOF
}

# pp_manifest NAME [MANIFEST_FN] writes the pod's manifest file. A timed
# window holds only pp_start: the manifest is the user's input, and writing
# it takes a mkdir and a cat (two forks, ~3 ms here) that the other tools'
# windows do not have.
pp_manifest() {
	mkdir -p "$R/manifests"
	echo "$1" >>"$OUT/peapod-names"
	"${2:-manifest}" "$1" >"$R/manifests/$1.yaml"
}
# pp_start NAME runs the pod of the manifest pp_manifest wrote.
pp_start() { "${P[@]}" run -d -f "$R/manifests/$1.yaml" >/dev/null; }
# pp_run NAME [MANIFEST_FN]: pp_manifest, then pp_start (untimed callers).
pp_run() {
	pp_manifest "$@"
	pp_start "$1"
}
pp_rm() { "${P[@]}" rm -f "$1" >/dev/null; }

# pp_start_traced NAME: pp_start with PEAPOD_TRACE=1, its stage times in
# $R/trace (a few lines on stderr: no measurable cost).
pp_start_traced() {
	PEAPOD_TRACE=1 pp_start "$@" 2>"$R/trace"
}

# trace_ms STAGE... prints the sum of the named stages' ms in $R/trace.
trace_ms() {
	local stages
	stages=$(printf '%s\n' "$@")
	awk -v stages="$stages" 'BEGIN { n = split(stages, s, "\n"); for (i = 1; i <= n; i++) want[s[i]] = 1 }
		/^trace: run / { sub(/^trace: run [^:]*: /, ""); ms = $(NF - 1); $NF = ""; $(NF - 1) = ""; sub(/ +$/, "");
			if ($0 in want) { sum += ms; found++ } }
		END { if (found != n) exit 1; printf "%.3f\n", sum }' "$R/trace"
}

# pp_facts NAME prints "uid supervisorPid hostVeth containerPid... " for the
# removal check.
pp_facts() {
	local json uid sup veth pids p out
	json=$("${P[@]}" inspect "$1")
	# The cgroup parent peapod-<rootid> names this root's host-global objects.
	[[ -s "$OUT/rootid" ]] || jq -r '.containers[0].cgroup | split("/")[0] | ltrimstr("peapod-")' <<<"$json" >"$OUT/rootid"
	read -r uid sup veth pids < <(jq -r '[.uid, .supervisorPid, .hostVeth] + [.containers[].pid] | map(tostring) | join(" ")' <<<"$json")
	out="$uid $(pid_tag "$sup") $veth"
	for p in $pids; do out+=" $(pid_tag "$p")"; done
	printf '%s\n' "$out"
}

# pid_tag PID prints PID:STARTTIME (field 22 of /proc/PID/stat). pid_max is
# 32768 here and scenario 6 forks thousands of exec probes, so a PID checked
# after a run may belong to another process: dead compares the start time.
pid_tag() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $20 }')
	printf '%s:%s\n' "$1" "${st:-gone}"
}

# pp_check_gone UID PID VETH CPID...: a removal is done only when all of the
# pod's processes, mounts, veth, lease and cgroups are gone.
pp_check_gone() {
	local uid=$1 veth=$3 pid
	shift 3
	for pid in "$@"; do
		dead "$pid" || die "peapod pod $uid: process $pid outlived rm"
	done
	! ip link show "$veth" >/dev/null 2>&1 || die "peapod pod $uid: veth $veth outlived rm"
	! grep -q "$uid" /proc/self/mountinfo || die "peapod pod $uid: mounts outlived rm"
	! grep -rqs "$uid" "$B/peapod/net" || die "peapod pod $uid: IP lease outlived rm"
	[[ -z "$(find /sys/fs/cgroup -maxdepth 3 -name "$uid" 2>/dev/null)" ]] ||
		die "peapod pod $uid: cgroup outlived rm"
}

# dead PID: gone, or a zombie. This VM's PID 1 (process_api) does not reap
# the orphans it inherits, so a killed process stays a zombie there forever.
# With PID:STARTTIME (pid_tag), a PID now held by a process that started at
# another time counts as dead too.
dead() {
	local pid=${1%%:*} f
	f=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || return 0
	[[ -z "$f" ]] && return 0
	read -r -a f <<<"$f"
	[[ "${f[0]}" == Z ]] || { [[ "$1" == *:* ]] && [[ "${f[19]}" != "${1#*:}" ]]; }
}

pm_start() {
	"${PM[@]}" pod create --name "$1" >/dev/null
	"${PM[@]}" run -d --pod "$1" "$IMAGE" sleep 3600 >/dev/null
}
pm_rm() { "${PM[@]}" pod rm -f -t 0 "$1" >/dev/null; }
# pm_monitors prints the live conmon processes of our podman root.
pm_monitors() {
	local p
	for p in $(pgrep -f "conmon.*$B/podman/root"); do
		dead "$p" || echo "$p"
	done
}
pm_check_gone() {
	wait_until 5 pm_none || die "podman pod $1: conmon outlived pod rm"
	wait_until 5 no_ports || die "podman pod $1: veth outlived pod rm"
}
pm_none() { [[ -z "$(pm_monitors)" ]]; }

cni_hand() {
	CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/run/netns/$HAND_NS CNI_IFNAME=eth0 \
		CNI_PATH=/usr/lib/cni /usr/lib/cni/bridge <"$B/cni-hand.json" >/dev/null
}

# hand_start RT ID / hand_rm RT ID: the same pod by hand with an OCI runtime
# and the CNI reference plugins.
# hand_start RUNTIME ID: netns, CNI ADD, then the container; HAND_T0 and
# HAND_T1 bracket the container's create + start (scenario 1's containers
# stage).
hand_start() {
	ip netns add "$HAND_NS"
	cni_hand ADD "$2"
	# shellcheck disable=SC2034 # read by s1_one
	HAND_T0=${EPOCHREALTIME/./}
	"$1" create --bundle "$B/bundle-$1" "$2" </dev/null >/dev/null 2>&1
	"$1" start "$2"
	# shellcheck disable=SC2034 # read by s1_one
	HAND_T1=${EPOCHREALTIME/./}
}
hand_rm() {
	"$1" delete -f "$2"
	cni_hand DEL "$2"
	ip netns del "$HAND_NS"
}

hand_bundles() {
	local rt
	for rt in crun runc; do
		mkdir -p "$B/bundle-$rt"
		# One rootfs for both, by absolute path: runc refuses a symlinked one.
		jq --arg cg "/ppbench-rt-$rt/c" --arg root "$B/bundle/rootfs" \
			'.linux.cgroupsPath = $cg | .root.path = $root' "$B/bundle/config.json" >"$B/bundle-$rt/config.json"
	done
}

floor() { unshare --net --uts --ipc --pid --fork --mount-proc /bin/true; }

# pp_helpers SUPERVISOR_PID... prints the PIDs of the peapod helpers the
# supervisors started (peapod-prober, a reaper), not their workloads.
pp_helpers() {
	ps -e -o pid=,ppid=,comm= | awk -v sups=" $* " \
		'index(sups, " " $2 " ") && $3 ~ /^peapod-/ { print $1 }'
}

# variants_rotated I V... prints the variants rotated by I, so no variant
# always runs first or right after the same one.
variants_rotated() {
	local i=$1 n j
	shift
	n=$#
	local -a vs=("$@")
	for ((j = 0; j < n; j++)); do echo "${vs[(i + j) % n]}"; done
}
