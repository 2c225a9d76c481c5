#!/usr/bin/env bash
# bench.sh: peapod side by side with crun, runc, podman and the CNI reference
# plugins (issue 5). Every figure is measured in the same run, A/B
# interleaved, so ratios hold on a noisy shared VM where absolutes drift.
#
#   sudo bash scripts/bench.sh [SCENARIO...]     (default: 1 2 3 4 5 6 7 8 9 10)
#
# Scenarios: 1 pod cycle, 2 N pods one after another, 3 memory per pod,
# 4 exec, 5 pod network setup + teardown, 6 probe load (CPU of HTTP, TCP and
# exec probes at 1 s; exec probe latency vs crun exec), 7 the kernel floor,
# 8 a 150 MiB image pull from a local docker-registry (vs podman pull and
# skopeo copy), 9 the CRI: a crictl pod cycle and the daemons' memory,
# `peapod cri` vs containerd's CRI plugin with runc, 10 the CRI's critest
# against both (per spec group: passed, failed, skipped):
# one file each under scripts/bench/. It installs what it needs, builds and
# installs peapod (scripts/provision.sh), runs, prints a markdown table and
# writes it to bench-results/<date>.md, then removes everything it created
# and checks that it did.
#
# Environment:
#   BENCH_RUNS=20          counted runs per variant (warm-up: BENCH_WARMUP=3)
#   BENCH_SCALE_N=100      pods in scenario 2 (BENCH_SCALE_RUNS=1 rounds)
#   BENCH_MEM_N=20         pods per side for scenario 3's RSS/Pss
#   BENCH_MEMAVAIL_N=100   pods per side for scenario 3's MemAvailable drop
#   BENCH_PROBE_N=100      pods per run in scenario 6
#   BENCH_PROBE_SECONDS=60 scenario 6's CPU window per run
#   BENCH_PULL_RUNS=5      counted pulls per variant in scenario 8
#   BENCH_CRI_N=10         running pods per daemon for scenario 9's memory
#   BENCH_NO_BUILD=1       use the installed peapod as it is
#   BENCH_OUT=DIR          where results go (default REPO/bench-results)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
# The harness's parts: measuring helpers, set-up and cleanup, how each tool
# is driven, then one file per scenario. Tables and statistics come from
# benchtool (scripts/bench/benchtool), built by setup.
# shellcheck source=scripts/bench/lib.sh
source "$REPO/scripts/bench/lib.sh"
# shellcheck source=scripts/bench/setup.sh
source "$REPO/scripts/bench/setup.sh"
# shellcheck source=scripts/bench/tools.sh
source "$REPO/scripts/bench/tools.sh"
# shellcheck source=scripts/bench/s1-pod-cycle.sh
source "$REPO/scripts/bench/s1-pod-cycle.sh"
# shellcheck source=scripts/bench/s2-scale.sh
source "$REPO/scripts/bench/s2-scale.sh"
# shellcheck source=scripts/bench/s3-memory.sh
source "$REPO/scripts/bench/s3-memory.sh"
# shellcheck source=scripts/bench/s4-exec.sh
source "$REPO/scripts/bench/s4-exec.sh"
# shellcheck source=scripts/bench/s5-network.sh
source "$REPO/scripts/bench/s5-network.sh"
# shellcheck source=scripts/bench/s6-probes.sh
source "$REPO/scripts/bench/s6-probes.sh"
# shellcheck source=scripts/bench/s7-floor.sh
source "$REPO/scripts/bench/s7-floor.sh"
# shellcheck source=scripts/bench/s8-pull.sh
source "$REPO/scripts/bench/s8-pull.sh"
# shellcheck source=scripts/bench/s9-cri.sh
source "$REPO/scripts/bench/s9-cri.sh"
# shellcheck source=scripts/bench/s10-critest.sh
source "$REPO/scripts/bench/s10-critest.sh"
export PATH="/usr/local/go/bin:/usr/local/bin:$PATH" GOTOOLCHAIN=local

readonly RUNS=${BENCH_RUNS:-20} WARMUP=${BENCH_WARMUP:-3}
readonly SCALE_N=${BENCH_SCALE_N:-100} SCALE_RUNS=${BENCH_SCALE_RUNS:-1}
readonly MEM_N=${BENCH_MEM_N:-20} MEMAVAIL_N=${BENCH_MEMAVAIL_N:-100}
readonly PROBE_N=${BENCH_PROBE_N:-100} PROBE_SECONDS=${BENCH_PROBE_SECONDS:-60}

# Everything the harness creates lives under these names, apart from the
# host's: the bench roots, bridges ppb*/ppbench0, subnets 10.230-236/16,
# the netns ppbench-hand, cgroups ppbench-*, and podman's own root;
# scenario 9 adds bridges ppbcri0 and ppbctrd0 on 10.237-238/16; scenario
# 10's go test makes its own (pc*, pd* on /24s of 10.227.0.0/16), checks
# and removes them itself.
readonly B=/var/lib/peapod-bench R=/run/peapod-bench
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
readonly STAMP
readonly RESULTS=${BENCH_OUT:-$REPO/bench-results}
OUT="$R/out"
readonly OUT
readonly BENCHTOOL="$B/benchtool"
readonly CGU=/sys/fs/cgroup/unified
readonly IMAGE=localhost/ppbench-busybox:latest HAND_NS=ppbench-hand
readonly P=(peapod --root "$B/peapod" --run-root "$R/peapod" --bridge ppbench0 --subnet 10.230.0.0/16)
readonly PM=(podman --root "$B/podman/root" --runroot "$R/podman" --tmpdir "$R/podman-tmp")
readonly OUR_LINKS=(ppbench0 ppbpod0 ppbcni0 ppbnet0 ppbcni1 ppbcni2 ppbcni3 ppbcri0 ppbctrd0)
readonly PACKAGES=(runc crun podman catatonit containernetworking-plugins busybox-static jq iproute2 util-linux nftables docker-registry skopeo curl python3)
export CONTAINERS_CONF="$B/containers.conf"

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}

header() {
	printf '# peapod benchmark, %s\n\n' "$STAMP"
	printf -- '- machine: %s, %s vCPU, %s MiB, kernel %s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")" \
		"$(nproc)" "$(awk '$1 == "MemTotal:" { print int($2 / 1024) }' /proc/meminfo)" "$(uname -r)"
	printf -- '- peapod: %s%s\n' "$(peapod version 2>/dev/null | head -1)" "${BUILD_NOTE:+ ($BUILD_NOTE)}"
	printf -- '- anchors: %s; %s; podman %s; CNI plugins %s; %s\n' "$(crun --version | head -1)" \
		"$(runc --version | head -1)" "$(podman version --format '{{.Client.Version}}' 2>/dev/null)" \
		"$(dpkg-query -W -f='${Version}' containernetworking-plugins)" "$(skopeo --version 2>/dev/null)"
	printf -- '- runs: %s counted after %s warm-up per variant, interleaved in rotating order; times in ms\n' "$RUNS" "$WARMUP"
	printf -- '- CPU ms/op: cgroup v2 usage_usec of the cgroup the tool ran in (and where it moved its containers)\n'
}

main() {
	local sc scenarios=("$@")
	((${#scenarios[@]})) || scenarios=(1 2 3 4 5 6 7 8 9 10)
	for sc in "${scenarios[@]}"; do
		[[ "$sc" =~ ^([1-9]|10)$ ]] || die "unknown scenario $sc (1-10)"
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
