#!/usr/bin/env bash
# bench.sh: peapod side by side with crun, runc, podman and the CNI reference
# plugins (issue 5). Every figure is measured in the same run, A/B
# interleaved, so ratios hold on a noisy shared VM where absolutes drift.
#
#   sudo bash scripts/bench.sh [SCENARIO...]     (default: 1 2 3 4 5 6 7)
#
# Scenarios: 1 pod cycle, 2 N pods one after another, 3 memory per pod,
# 4 exec, 5 pod network setup + teardown, 6 probe load (CPU of HTTP, TCP and
# exec probes at 1 s; exec probe latency vs crun exec), 7 the kernel floor. It installs what it needs, builds and installs peapod, runs,
# prints a markdown table and writes it to bench-results/<date>.md, then
# removes everything it created and checks that it did.
#
# Environment:
#   BENCH_RUNS=20          counted runs per variant (warm-up: BENCH_WARMUP=3)
#   BENCH_SCALE_N=100      pods in scenario 2 (BENCH_SCALE_RUNS=1 rounds)
#   BENCH_MEM_N=20         pods per side for scenario 3's RSS/Pss
#   BENCH_MEMAVAIL_N=100   pods per side for scenario 3's MemAvailable drop
#   BENCH_PROBE_N=100      pods per run in scenario 6
#   BENCH_PROBE_SECONDS=60 scenario 6's CPU window per run
#   BENCH_NO_BUILD=1       use the installed peapod as it is
#   BENCH_OUT=DIR          where results go (default REPO/bench-results)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
# shellcheck source=scripts/bench/lib.sh
source "$REPO/scripts/bench/lib.sh"
export PATH="/usr/local/go/bin:/usr/local/bin:$PATH" GOTOOLCHAIN=local

readonly RUNS=${BENCH_RUNS:-20} WARMUP=${BENCH_WARMUP:-3}
readonly SCALE_N=${BENCH_SCALE_N:-100} SCALE_RUNS=${BENCH_SCALE_RUNS:-1}
readonly MEM_N=${BENCH_MEM_N:-20} MEMAVAIL_N=${BENCH_MEMAVAIL_N:-100}
readonly PROBE_N=${BENCH_PROBE_N:-100} PROBE_SECONDS=${BENCH_PROBE_SECONDS:-60}

# Everything the harness creates lives under these names, apart from the
# host's: the bench roots, bridges ppb*/ppbench0, subnets 10.230-236/16,
# the netns ppbench-hand, cgroups ppbench-*, and podman's own root.
readonly B=/var/lib/peapod-bench R=/run/peapod-bench
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
readonly STAMP
readonly RESULTS=${BENCH_OUT:-$REPO/bench-results}
OUT="$R/out"
readonly OUT
readonly CGU=/sys/fs/cgroup/unified
readonly IMAGE=localhost/ppbench-busybox:latest HAND_NS=ppbench-hand
readonly P=(peapod --root "$B/peapod" --run-root "$R/peapod" --bridge ppbench0 --subnet 10.230.0.0/16)
readonly PM=(podman --root "$B/podman/root" --runroot "$R/podman" --tmpdir "$R/podman-tmp")
readonly OUR_LINKS=(ppbench0 ppbpod0 ppbcni0 ppbnet0 ppbcni1 ppbcni2 ppbcni3)
readonly PACKAGES=(runc crun podman catatonit containernetworking-plugins busybox-static jq iproute2 util-linux nftables)
export CONTAINERS_CONF="$B/containers.conf"

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------- set-up

ensure_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build_peapod() {
	[[ "${BENCH_NO_BUILD:-}" == 1 ]] && return 0
	if bash "$REPO/scripts/provision.sh" >"$OUT/provision.log" 2>&1; then
		log "peapod built and installed by scripts/provision.sh"
		return 0
	fi
	log "provision.sh failed (see $OUT/provision.log); building with scripts/build.sh"
	if (cd "$REPO" && bash scripts/build.sh "$B/bin") 2>"$OUT/build.log"; then
		install -m 0755 "$B"/bin/* /usr/local/bin/
		return 0
	fi
	# A tree half-way through someone's change still benchmarks what is
	# installed; the table's header says so.
	command -v peapod >/dev/null || die "peapod does not build (see $OUT/build.log) and none is installed"
	BUILD_NOTE="the tree did not build; measured the installed peapod"
	log "warning: $BUILD_NOTE"
}

# snapshot FILE records machine-wide state the cleanup check compares with.
snapshot() {
	{
		echo "## links"
		ip -o link show | awk -F': ' '{ print $2 }' | cut -d@ -f1 | sort
		echo "## netns"
		find /run/netns -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort
		echo "## nft"
		nft list tables 2>/dev/null | sort
		echo "## iptables"
		iptables-save 2>/dev/null | sed -e '/^#/d' -e 's/\[[0-9:]*\]//' | sort
		echo "## cgroups"
		find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -not -path '/sys/fs/cgroup/hugetlb*' \
			-not -path '*/process_api*' 2>/dev/null | sort
		echo "## mounts"
		awk '$5 ~ /peapod-bench|ppbench/ { print $5 }' /proc/self/mountinfo | sort
	} >"$1"
}

setup() {
	mkdir -p "$B" "$R" "$OUT/samples" "$OUT/cpu" "$RESULTS"
	IP_FORWARD=$(cat /proc/sys/net/ipv4/ip_forward)
	snapshot "$OUT/before"
	ensure_packages "${PACKAGES[@]}"
	build_peapod
	# crun 1.8 refuses to start in this hybrid layout until a v1 hugetlb
	# hierarchy exists; mounted once here, unmounted by cleanup.
	if ! mountpoint -q /sys/fs/cgroup/hugetlb; then
		mkdir -p /sys/fs/cgroup/hugetlb
		mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
		MOUNTED_HUGETLB=1
	fi
	prepare_images
	# This sandbox lacks CAP_SYS_RESOURCE, so podman must not raise ulimits.
	mkdir -p "$B/podman-cni"
	cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[network]
network_backend = "cni"
network_config_dir = "$B/podman-cni"
default_network = "ppbench"
EOF
	cat >"$B/podman-cni/ppbench.conflist" <<'EOF'
{"cniVersion":"0.4.0","name":"ppbench","plugins":[{"type":"bridge","bridge":"ppbpod0","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","routes":[{"dst":"0.0.0.0/0"}],"ranges":[[{"subnet":"10.232.0.0/16","gateway":"10.232.0.1"}]]}}]}
EOF
	"${PM[@]}" import "$B/busybox.tar" "$IMAGE" >/dev/null
	# The by-hand anchor: the same plugins podman uses, no masquerade either.
	cat >"$B/cni-hand.json" <<EOF
{"cniVersion":"1.0.0","name":"ppbench-hand","type":"bridge","bridge":"ppbcni0","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","subnet":"10.231.0.0/16","dataDir":"$B/cni-ipam"}}
EOF
	(cd "$REPO" && go build -o "$B/netbench" ./scripts/bench/netbench)
	# One pod up and down: names this root's rootid for the cleanup check
	# and warms the caches.
	pp_run ppbench-first
	pp_facts ppbench-first >/dev/null
	pp_rm ppbench-first
	CG_HOME=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
}

# prepare_images makes one busybox tar and gives it to every tool.
prepare_images() {
	bash "$REPO/scripts/mkimage-busybox.sh" "$B/busybox.tar" 2>/dev/null
	"${P[@]}" image import "$B/busybox.tar" --name busybox:latest >/dev/null
	mkdir -p "$B/bundle/rootfs"
	tar -C "$B/bundle/rootfs" -xf "$B/busybox.tar"
	(cd "$B/bundle" && crun spec && mv config.json config.tmpl)
	# The pod netns is joined by path; the cgroup parent is per runtime so the
	# harness can read its CPU time and remove it.
	jq --arg ns "/run/netns/$HAND_NS" '.process.args = ["sleep", "3600"] | .process.terminal = false
		| .linux.namespaces = [.linux.namespaces[] | if .type == "network" then .path = $ns else . end]' \
		"$B/bundle/config.tmpl" >"$B/bundle/config.json"
}

# ---------------------------------------------------------------- cleanup

cleanup() {
	local rc=$? l d
	trap - EXIT
	# Best effort from here on: one failed step must not stop the others.
	set +e
	cd /
	cg_leave
	log "cleaning up"
	if [[ -f "$OUT/peapod-names" ]]; then
		# shellcheck disable=SC2046 # one name per word
		sort -u "$OUT/peapod-names" | xargs -r -n 50 "${P[@]}" rm -f >/dev/null 2>&1 || true
	fi
	# The masquerade table lives as long as the bridge: `net rm` removes
	# both (the loop below deletes any table peapod-ppb* it left).
	if command -v peapod >/dev/null && [[ -d "$B/peapod" ]]; then
		"${P[@]}" net rm >/dev/null 2>&1 || log "peapod net rm failed; deleting bridge and table by hand"
	fi
	if command -v podman >/dev/null && [[ -d "$B/podman" ]]; then
		"${PM[@]}" pod rm -a -f -t 0 >/dev/null 2>&1 || true
		"${PM[@]}" rm -a -f -t 0 >/dev/null 2>&1 || true
		"${PM[@]}" rmi -a -f >/dev/null 2>&1 || true
	fi
	for l in crun runc; do
		command -v "$l" >/dev/null || continue
		"$l" delete -f "ppbench-$l" >/dev/null 2>&1 || true
		"$l" delete -f "ppbench-x-$l" >/dev/null 2>&1 || true
	done
	ip netns del "$HAND_NS" 2>/dev/null || true
	if ! wait_until 5 no_ports; then
		log "cleanup check FAILED: ports still on our bridges after 5 s"
		rc=1
	fi
	for l in "${OUR_LINKS[@]}"; do
		ip link del "$l" 2>/dev/null || true
	done
	for l in $(nft list tables 2>/dev/null | awk '$3 ~ /ppb/ { print $2 ":" $3 }'); do
		nft delete table "${l%%:*}" "${l#*:}" || true
	done
	remove_cgroups
	if [[ -n "${IP_FORWARD:-}" ]]; then
		echo "$IP_FORWARD" >/proc/sys/net/ipv4/ip_forward
	fi
	# Unmount whatever podman's overlay or a pin left under our roots.
	awk '{ print $5 }' /proc/self/mountinfo | grep -E "^($B|$R)" | sort -r |
		while read -r d; do umount -l "$d" 2>/dev/null || true; done
	if [[ -n "${MOUNTED_HUGETLB:-}" ]]; then
		find /sys/fs/cgroup/hugetlb -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
		if umount /sys/fs/cgroup/hugetlb; then rmdir /sys/fs/cgroup/hugetlb; fi
	fi
	if [[ -d "$OUT" ]]; then
		snapshot "$OUT/after"
		check_clean || rc=1
	fi
	rm -rf "$B" "$R"
	exit "$rc"
}

no_ports() {
	local l
	for l in "${OUR_LINKS[@]}"; do
		[[ -z "$(ip -o link show master "$l" 2>/dev/null)" ]] || return 1
	done
}

# bridge_ports_at_most N: peapod's bench bridge has at most N ports.
bridge_ports_at_most() {
	(($(ip -o link show master ppbench0 2>/dev/null | wc -l) <= $1))
}

# remove_cgroups removes, depth first, the cgroups the tools made for our
# pods and left behind: crun's and runc's parents, podman's libpod_parent
# children (podman leaks an empty one per pod), peapod's and ours.
remove_cgroups() {
	local h new
	new=$(LC_ALL=C comm -13 <(sed -n '/^## cgroups/,/^## mounts/p' "$OUT/before" | grep -v '^## ' | LC_ALL=C sort) \
		<(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -not -path '/sys/fs/cgroup/hugetlb*' \
			-not -path '*/process_api*' | LC_ALL=C sort))
	for h in $new; do
		case "$h" in
		*/ppbench-* | */libpod_parent* | */peapod-*)
			find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
			;;
		esac
	done
}

check_clean() {
	local diff
	# Only what carries our names counts: other engineers' tests may create
	# and remove their own bridges, netns and cgroups while we run.
	local ours='ppb|ppbench|libpod_parent|peapod-bench'
	if [[ -s "$OUT/rootid" ]]; then ours+="|peapod-$(cat "$OUT/rootid")"; fi
	diff=$(diff <(grep -v '^## ' "$OUT/before") <(grep -v '^## ' "$OUT/after") | grep '^>' | grep -E "$ours" || true)
	if [[ -n "$diff" ]]; then
		log "cleanup check FAILED; left behind:"
		printf '%s\n' "$diff" >&2
		return 1
	fi
	if [[ "$(cat /proc/sys/net/ipv4/ip_forward)" != "${IP_FORWARD:-x}" ]]; then
		log "cleanup check FAILED: ip_forward not restored"
		return 1
	fi
	# Supervisors name their run dir under $R; probers die with them.
	if pgrep -f "$B|$R|ppbench" >/dev/null; then
		log "cleanup check FAILED: processes left: $(pgrep -f "$B|$R|ppbench" | tr '\n' ' ')"
		return 1
	fi
	log "cleanup check: ok (links, netns, nftables, iptables, cgroups, mounts, processes, ip_forward)"
}

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
	t0=$(now_us)
	"$@"
	t1=$(now_us)
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

pp_run() {
	local f="$R/manifests/$1.yaml"
	mkdir -p "$R/manifests"
	echo "$1" >>"$OUT/peapod-names"
	"${2:-manifest}" "$1" >"$f"
	"${P[@]}" run -d -f "$f" >/dev/null
}
pp_rm() { "${P[@]}" rm -f "$1" >/dev/null; }

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
hand_start() {
	ip netns add "$HAND_NS"
	cni_hand ADD "$2"
	"$1" create --bundle "$B/bundle-$1" "$2" </dev/null >/dev/null 2>&1
	"$1" start "$2"
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

# ---------------------------------------------------------------- scenarios

# variants_rotated I V... prints the variants rotated by I, so no variant
# always runs first or right after the same one.
variants_rotated() {
	local i=$1 n j
	shift
	n=$#
	local -a vs=("$@")
	for ((j = 0; j < n; j++)); do echo "${vs[(i + j) % n]}"; done
}

s1_one() {
	local v=$1 i=$2 counted=$3 name facts
	case "$v" in
	peapod)
		name="s1-$i"
		timed s1 peapod-run "$counted" pp_run "$name"
		facts=$(pp_facts "$name")
		timed s1 peapod-rm "$counted" pp_rm "$name"
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
		timed s1 "${v}-rm" "$counted" hand_rm "${v%+cni}" "ppbench-${v%+cni}"
		wait_until 5 no_ports || die "$v: veth outlived CNI DEL"
		;;
	floor) timed s1 floor "$counted" floor ;;
	esac
}

# sum_phases SC OUT A B: OUT[i] = A[i] + B[i], the whole cycle; CPU likewise.
sum_phases() {
	local d="$OUT/samples/$1" c="$OUT/cpu/$1"
	paste "$d/$3" "$d/$4" | awk '{ printf "%.3f\n", $1 + $2 }' >"$d/$2"
	paste "$c/$3" "$c/$4" | awk '{ print $1 + $2 }' >"$c/$2"
}

scenario1() {
	local i v
	log "scenario 1: pod cycle, $RUNS runs (+$WARMUP warm-up) per variant"
	hand_bundles
	for ((i = 0; i < WARMUP + RUNS; i++)); do
		while read -r v; do
			s1_one "$v" "$i" $((i >= WARMUP))
		done < <(variants_rotated "$i" peapod podman crun+cni runc+cni floor)
	done
	sum_phases s1 peapod peapod-run peapod-rm
	sum_phases s1 podman podman-start podman-rm
	sum_phases s1 crun+cni crun+cni-start crun+cni-rm
	sum_phases s1 runc+cni runc+cni-start runc+cni-rm
	{
		table s1 "Scenario 1: pod cycle (networked pod, one sleep container: create, running, removed)" \
			peapod podman crun+cni runc+cni floor
		table s1 "Scenario 1, start half" peapod-run podman-start crun+cni-start runc+cni-start
		table s1 "Scenario 1, removal half" peapod-rm podman-rm crun+cni-rm runc+cni-rm
	} >>"$OUT/table.md"
}

s2_peapod() {
	local r=$1 i
	for ((i = 0; i < SCALE_N; i++)); do pp_run "s2-$r-$i"; done
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
	local r v
	log "scenario 2: $SCALE_N pods one after another, then removed; $SCALE_RUNS round(s)"
	for ((r = 0; r < SCALE_RUNS; r++)); do
		while read -r v; do
			# The kernel tears netns down asynchronously: start each batch on
			# a bridge with no ports left from the last one.
			wait_until 30 no_ports || die "scenario 2: veths of the last batch still there"
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

# mem_row LABEL N RSS_KIB PSS_KIB prints one row of scenario 3's table.
mem_row() {
	awk -v l="$1" -v n="$2" -v r="$3" -v p="$4" \
		'BEGIN { printf "| %s | %d | %.2f | %.2f |\n", l, n, r / n / 1024, p / n / 1024 }'
}

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
	mapfile -t -O "${#pids[@]}" pids < <(s6_helpers "${pids[@]}")
	proc_mem "${pids[@]}"
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
	awk -v b="$before" -v a="$after" -v n="$MEMAVAIL_N" 'BEGIN { printf "%.2f", (b - a) / n / 1024 }'
}
s3a_peapod() { local i; for ((i = 0; i < MEMAVAIL_N; i++)); do pp_run "s3a-$i"; done; }
s3a_peapod_rm() { local i; for ((i = 0; i < MEMAVAIL_N; i++)); do pp_rm "s3a-$i"; done; }
s3a_podman() { local i; for ((i = 0; i < MEMAVAIL_N; i++)); do pm_start "s3a-$i"; done; }
s3a_podman_rm() {
	local i
	for ((i = 0; i < MEMAVAIL_N; i++)); do pm_rm "s3a-$i"; done
	wait_until 10 pm_none || die "scenario 3: conmon left"
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
		mem_row "peapod (supervisor)" "$MEM_N" "${pp[0]}" "${pp[1]}"
		mem_row "peapod with TCP+HTTP probes (supervisor + any peapod helper; plain HTTP starts none)" "$MEM_N" "${ppp[0]}" "${ppp[1]}"
		mem_row "podman (2 × conmon + catatonit)" "$MEM_N" "${pm[0]}" "${pm[1]}"
		awk -v a="${pp[0]}" -v b="${pm[0]}" -v c="${pp[1]}" -v d="${pm[1]}" \
			'BEGIN { printf "| peapod ÷ podman | | %.3f | %.3f |\n", a / b, c / d }'
		printf '\nMemAvailable drop per pod at N=%d (whole machine, workload included): peapod %s MiB, podman %s MiB.\n' \
			"$MEMAVAIL_N" "$a_pp" "$a_pm"
	} >>"$OUT/table.md"
}

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

scenario5() {
	local v ms cni
	log "scenario 5: pod network setup + teardown, $RUNS runs (+$WARMUP warm-up) per variant"
	# provision.sh installs peapod-cni next to peapod (build_peapod's
	# fallback too); netbench runs it and the bridge plugin through libcni.
	cni=$(command -v peapod-cni) || die "scenario 5: peapod-cni is not installed"
	mkdir -p "$OUT/samples/s5"
	# A file, not a pipe: a failed netbench (its cleanup check included)
	# must fail the run.
	"$B/netbench" -runs "$RUNS" -warmup "$WARMUP" -dir "$R/netbench" -peapod-cni "$cni" >"$OUT/s5-raw" ||
		die "scenario 5: netbench failed"
	while read -r v ms; do
		echo "$ms" >>"$OUT/samples/s5/$v"
	done <"$OUT/s5-raw"
	{
		table s5 "Scenario 5: pod network, netns created → connected → disconnected → host veth gone" \
			peapod cni-bridge kernel-floor floor-unpin peapod-cni-libcni bridge-libcni
		printf '\nkernel-floor: a bare veth pair (peer born in the netns) created and its host end deleted; floor-unpin: the same pair left to die with the netns, timed to its RTM_DELLINK.\n'
		printf '\npeapod-cni through libcni ÷ bridge through libcni (median of pairs, min–max): %s\n' \
			"$(pair_ratio "$OUT/samples/s5/peapod-cni-libcni" "$OUT/samples/s5/bridge-libcni")"
		printf '\nkernel-floor ÷ cni-bridge (median of pairs, min–max): %s\n' \
			"$(pair_ratio "$OUT/samples/s5/kernel-floor" "$OUT/samples/s5/cni-bridge")"
	} >>"$OUT/table.md"
}

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

# s6_helpers SUPERVISOR_PID... prints the PIDs of the peapod helpers the
# supervisors started (peapod-prober, a reaper), not their workloads.
s6_helpers() {
	ps -e -o pid=,ppid=,comm= | awk -v sups=" $* " \
		'index(sups, " " $2 " ") && $3 ~ /^peapod-/ { print $1 }'
}

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
	"${P[@]}" metrics | awk -v pod="pod=\"$2-" '
		/^prober_probe_duration_seconds_(sum|count)\{/ && index($0, pod) {
			match($0, /container="[^"]*"/); c = substr($0, RSTART + 11, RLENGTH - 12)
			match($0, /probe_type="[^"]*"/); t = substr($0, RSTART + 12, RLENGTH - 13)
			if ($1 ~ /_sum\{/) s[c "/" t] += $2; else n[c "/" t] += $2
		}
		END { for (k in n) print k, s[k] + 0, n[k] }' | sort >"$1"
}

# s6_probe_ms BEFORE AFTER KEY prints "mean_ms count" of KEY's probes
# between two s6_metrics snapshots.
s6_probe_ms() {
	join "$1" "$2" | awk -v k="$3" '$1 == k && $5 > $3 {
		printf "%.2f %d\n", ($4 - $2) * 1000 / ($5 - $3), $5 - $3 }'
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
		t0=$(now_us)
		crun exec ppbench-x-crun cat /tmp/healthy >/dev/null
		t1=$(now_us)
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
	local label=$1 fn=$2 pre=$3 i c0 c1 w0 w1 hz cells k ms n facts=() sups=() helpers=()
	log "scenario 6: $label, $PROBE_N pods for $PROBE_SECONDS s"
	# s6-probe keeps its port on the bridge; the last batch's must be gone.
	wait_until 30 bridge_ports_at_most 1 || die "scenario 6: veths of the last batch still there"
	for ((i = 0; i < PROBE_N; i++)); do pp_run "$pre-$i" "$fn"; done
	for ((i = 0; i < PROBE_N; i++)); do s6_ready "$pre-$i"; done
	for ((i = 0; i < PROBE_N; i++)); do facts+=("$(pp_facts "$pre-$i")"); done
	for ((i = 0; i < PROBE_N; i++)); do sups+=("$(cut -d' ' -f2 <<<"${facts[i]}" | cut -d: -f1)"); done
	mapfile -t helpers < <(for i in $(s6_helpers "${sups[@]}"); do pid_tag "$i"; done)
	# Let the start-up settle, then count the window only.
	sleep 3
	s6_metrics "$OUT/s6-$pre-m0" "$pre"
	c0=$(s6_ticks "${sups[@]}" "${helpers[@]}")
	w0=$(now_us)
	sleep "$PROBE_SECONDS"
	c1=$(s6_ticks "${sups[@]}" "${helpers[@]}")
	w1=$(now_us)
	s6_metrics "$OUT/s6-$pre-m1" "$pre"
	hz=$(getconf CLK_TCK)
	cells=""
	for k in web/Readiness web/Liveness ex/Liveness; do
		read -r ms n < <(s6_probe_ms "$OUT/s6-$pre-m0" "$OUT/s6-$pre-m1" "$k"; echo "- 0")
		cells+=" $ms $n"
	done
	awk -v l="$label" -v n="$PROBE_N" -v c="$((c1 - c0))" -v hz="$hz" -v w="$((w1 - w0))" -v h="${#helpers[@]}" \
		-v cells="$cells" 'BEGIN { split(cells, a, " ")
		probes = a[2] + a[4] + a[6]; cpu = c / hz; sec = w / 1e6
		printf "| %s | %d | %d | %.1f | %.2f | %.2f %% | %s | %s | %s | %s |\n", l, n, h, probes / sec, cpu, cpu / sec * 100,
			probes ? sprintf("%.0f", cpu * 1e6 / probes) : "-", a[1], a[3], a[5] }' >>"$OUT/s6-rows"
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
	local idle load cr_idle cr_load cr_paced facts
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
	read -r idle < <(s6_probe_ms "$OUT/s6-idle-m0" "$OUT/s6-idle-m1" ex/Liveness)
	read -r load < <(s6_probe_ms "$OUT/s6-load-m0" "$OUT/s6-load-m1" ex/Liveness)
	read -r _ _ cr_idle _ < <(stats "$OUT/samples/s6/crun-exec-idle")
	read -r _ _ cr_load _ < <(stats "$OUT/samples/s6/crun-exec-load")
	read -r _ _ cr_paced _ < <(stats "$OUT/samples/s6/crun-exec-paced")
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
		awk -v i="${idle:-}" -v l="${load:-}" -v ci="$cr_idle" -v cl="$cr_load" -v cp="$cr_paced" 'BEGIN {
			split(i, a, " "); split(l, b, " ")
			printf "\nExec probe latency from the supervisor (prober_probe_duration_seconds sum ÷ count): idle %s ms (%d probes) = %.2f × crun exec once a second (%s ms), %.2f × crun exec interleaved (%s ms); under load %s ms (%d probes) = %.2f × crun exec (%s ms).\n",
				a[1], a[2], a[1] / cp, cp, a[1] / ci, ci, b[1], b[2], b[1] / cl, cl }'
	} >>"$OUT/table.md"
}

scenario7() {
	local i
	log "scenario 7: kernel floor, $RUNS runs"
	for ((i = 0; i < WARMUP + RUNS; i++)); do timed s7 floor $((i >= WARMUP)) floor; done
	table s7 "Scenario 7: kernel floor (unshare --net --uts --ipc --pid --fork --mount-proc /bin/true)" floor >>"$OUT/table.md"
}

header() {
	printf '# peapod benchmark, %s\n\n' "$STAMP"
	printf -- '- machine: %s, %s vCPU, %s MiB, kernel %s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")" \
		"$(nproc)" "$(awk '$1 == "MemTotal:" { print int($2 / 1024) }' /proc/meminfo)" "$(uname -r)"
	printf -- '- peapod: %s%s\n' "$(peapod version 2>/dev/null | head -1)" "${BUILD_NOTE:+ ($BUILD_NOTE)}"
	printf -- '- anchors: %s; %s; podman %s; CNI plugins %s\n' "$(crun --version | head -1)" \
		"$(runc --version | head -1)" "$(podman version --format '{{.Client.Version}}' 2>/dev/null)" \
		"$(dpkg-query -W -f='${Version}' containernetworking-plugins)"
	printf -- '- runs: %s counted after %s warm-up per variant, interleaved in rotating order; times in ms\n' "$RUNS" "$WARMUP"
	printf -- '- CPU ms/op: cgroup v2 usage_usec of the cgroup the tool ran in (and where it moved its containers)\n'
}

main() {
	local sc scenarios=("$@")
	((${#scenarios[@]})) || scenarios=(1 2 3 4 5 6 7)
	for sc in "${scenarios[@]}"; do
		[[ "$sc" =~ ^[1-7]$ ]] || die "unknown scenario $sc (1-7)"
	done
	[[ $(id -u) -eq 0 ]] || die "must run as root"
	[[ ! -e "$B" && ! -e "$R" ]] || die "$B or $R exists: a previous run did not clean up; remove it first"
	trap cleanup EXIT
	setup
	header >"$OUT/table.md"
	for sc in "${scenarios[@]}"; do "scenario$sc"; done
	cp "$OUT/table.md" "$RESULTS/$STAMP.md"
	cat "$OUT/table.md"
	log "results written to $RESULTS/$STAMP.md"
}

main "$@"
