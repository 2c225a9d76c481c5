#!/usr/bin/env bash
# vagrant-test.sh: run peapod's root-tier end-to-end suites inside a Debian 12
# VM — systemd as PID 1, a pure cgroup v2 hierarchy, kernel 6.1: the host
# most users have, which CI's own (hybrid v1, a newer kernel) is not. CI runs
# it from scripts/test.sh; by hand:
#
#   sudo bash scripts/vagrant-test.sh
#
# It installs what it needs (Vagrant with libvirt, QEMU, debootstrap),
# builds the box (scripts/vagrant-box.sh, cached), builds peapod's static
# binaries and the test binaries on this host (`go test -c`: the VM may run
# under emulation, far too slow to compile in), brings the VM up with them
# synced in (rsync), runs the suites inside as root with CI=true (a skip
# fails) and prints `N passed, N failed` and the time. Whatever happens, it
# destroys the VM and removes every libvirt domain, volume, network, pool
# and iptables chain that was not there before, stops the libvirtd and
# virtlogd it started (it starts them only when they are not running), and
# fails if anything is left.
#
# What runs inside. Where /dev/kvm cannot run the guest (KVM-PVM here),
# QEMU emulates it (TCG): the VM boots in about a minute and the suites run
# 3-5 times slower than on the host. Measured on these 2-core machines:
# the whole e2e suite took 9 minutes at 59 tests and 15 at 81: too much
# for CI's budget, and growing with every test. So CI runs
# the tests that meet what differs on such a host (E2E_RUN), in about 6
# minutes, and probes_e2e whole (1 minute):
#   the cgroup driver auto picks v2           TestCgroupDriverAuto
#   cgroups under systemd, cgroup.kill, the   TestStop_7, TestRemove_8,
#   leak snapshot over the whole VM           TestFaultAtEveryStep,
#                                             TestSupervisorFaultAtEveryStep,
#                                             TestSupervisorLoss*
#   v2 limits, memory.events for OOM kills,   TestResources_*, TestUsage_*
#   cpu.stat, top/stats/update
#   the BPF device filter, masked paths       TestPrivileged_3_HostDevices,
#                                             TestIsolation_3_*
#   pods, network, restarts, status           TestPodNamespaces_1, TestInsidePod_2,
#                                             TestExec_4, TestPodToPod_3_1,
#                                             TestHostPort_3_6, TestExhaustion_3_2,
#                                             TestGCAfterCrash_3_4, TestRestartPolicy_6,
#                                             TestInitContainers_6, TestParallelPods_10,
#                                             TestStatus_11
# Every e2e test runs on CI's host (scripts/test.sh's go test): nothing is
# cut there. PEAPOD_VAGRANT_E2E_RUN=. runs all in the VM (minutes with
# KVM), less E2E_SKIP, which cannot run there or says nothing of the host:
#   TestUpgrade, TestVersionMismatch    build an older release with go and
#                                       git inside: minutes of compiling
#   Test*TerminalInjection_12           compile a TIOCSTI helper inside
#   TestChurn                           a soak: its length is CPU-bound
#   TestConcurrentRunsWithGC_3_2        30 concurrent runs on 2 emulated
#                                       CPUs pass the CLI's 30 s timeout
#
# Environment:
#   PEAPOD_VAGRANT_E2E_RUN     -run regex for tests/e2e in the VM (default: the list above)
#   PEAPOD_VAGRANT_E2E_SKIP    -skip regex for tests/e2e (default: the list above)
#   PEAPOD_VAGRANT_PROBES_RUN  -run regex for tests/probes_e2e (default .)
#   PEAPOD_VAGRANT_BOX         box to use (default peapod/bookworm64, built by
#                              scripts/vagrant-box.sh; debian/bookworm64 where
#                              it can be downloaded)
#   the Vagrantfile's PEAPOD_VAGRANT_* (driver, CPUs, memory, boot timeout)
set -euo pipefail

readonly DEFAULT_E2E_SKIP='^(TestUpgrade|TestVersionMismatch|Test[A-Za-z]*TerminalInjection_12|TestChurn|TestConcurrentRunsWithGC_3_2)$'
readonly DEFAULT_E2E_RUN='^(TestCgroupDriverAuto|TestStop_7|TestRemove_8|TestFaultAtEveryStep|TestSupervisorFaultAtEveryStep|TestSupervisorLoss|TestSupervisorLossSharedPID|TestResources_.*|TestUsage_.*|TestPrivileged_3_HostDevices|TestIsolation_3_.*|TestPodNamespaces_1|TestInsidePod_2|TestExec_4|TestPodToPod_3_1|TestHostPort_3_6|TestExhaustion_3_2|TestGCAfterCrash_3_4|TestRestartPolicy_6|TestInitContainers_6|TestParallelPods_10|TestStatus_11)$'
readonly E2E_RUN="${PEAPOD_VAGRANT_E2E_RUN:-$DEFAULT_E2E_RUN}"
readonly E2E_SKIP="${PEAPOD_VAGRANT_E2E_SKIP-$DEFAULT_E2E_SKIP}"
readonly PROBES_RUN="${PEAPOD_VAGRANT_PROBES_RUN:-.}"
readonly BOX="${PEAPOD_VAGRANT_BOX:-peapod/bookworm64}"

readonly HOST_PACKAGES=(
	vagrant vagrant-libvirt libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients
	qemu-system-x86 qemu-utils dnsmasq-base iptables debootstrap fdisk rsync openssh-client curl unzip
)
readonly VIRSH=(virsh -q -c qemu:///system)
readonly LIBVIRTD_PID=/run/libvirtd.pid
readonly VIRTLOGD_PID=/run/virtlogd.pid

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
cd "$REPO"
export PATH="/usr/local/go/bin:/usr/local/bin:/usr/sbin:/sbin:$PATH"
export GOTOOLCHAIN=local

log() { printf 'vagrant-test: %s\n' "$*" >&2; }
die() {
	printf 'vagrant-test: error: %s\n' "$*" >&2
	exit 1
}

# ensure_packages PKG... installs the Debian packages not installed yet.
ensure_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	log "packages: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# alive PIDFILE: does the pid file name a live process?
alive() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 1
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

libvirtd_up() { "${VIRSH[@]}" version >/dev/null 2>&1; }
virtlogd_up() { alive "$VIRTLOGD_PID" || [[ -S /run/libvirt/virtlogd-sock ]]; }

# Daemons found running before this script touched anything are not ours
# to stop, even if installing the packages would have started them.
LIBVIRTD_BEFORE=0
VIRTLOGD_BEFORE=0
STARTED_LIBVIRTD=""
STARTED_VIRTLOGD=""

# start_daemons starts virtlogd and libvirtd by hand where they do not run
# (no systemd here), noting the pids to stop them again.
start_daemons() {
	if ! virtlogd_up; then
		virtlogd -d
		STARTED_VIRTLOGD=$(cat "$VIRTLOGD_PID")
		log "libvirt: started virtlogd (pid $STARTED_VIRTLOGD)"
	elif ((!VIRTLOGD_BEFORE)) && alive "$VIRTLOGD_PID"; then
		STARTED_VIRTLOGD=$(cat "$VIRTLOGD_PID")
	fi
	if ! libvirtd_up; then
		libvirtd -d
		local deadline=$((SECONDS + 60))
		until libvirtd_up; do
			((SECONDS < deadline)) || die "libvirtd did not answer within 60s"
			sleep 0.5
		done
		STARTED_LIBVIRTD=$(cat "$LIBVIRTD_PID")
		log "libvirt: started libvirtd (pid $STARTED_LIBVIRTD)"
	elif ((!LIBVIRTD_BEFORE)) && alive "$LIBVIRTD_PID"; then
		STARTED_LIBVIRTD=$(cat "$LIBVIRTD_PID")
	fi
}

# stop_daemon PID NAME: SIGTERM a daemon this script started, and wait.
stop_daemon() {
	local pid=$1 name=$2 i
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || { log "libvirt: stopped $name"; return 0; }
		sleep 0.1
	done
	log "libvirt: $name (pid $pid) ignored SIGTERM; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

# resources prints what libvirt and the VM's network put on this host, one
# per line: domains, volumes, networks, pools, libvirt's iptables chains,
# bridges and taps. Only what libvirt names is looked at: other tests on
# this host make iptables chains and links of their own meanwhile.
resources() {
	local pool t cmd
	if libvirtd_up; then
		"${VIRSH[@]}" list --all --name | sed '/^$/d; s/^/domain /'
		"${VIRSH[@]}" net-list --all --name | sed '/^$/d; s/^/network /'
		for pool in $("${VIRSH[@]}" pool-list --all --name); do
			echo "pool $pool"
			"${VIRSH[@]}" vol-list "$pool" 2>/dev/null | awk -v p="$pool" 'NF { print "volume " p "/" $1 }'
		done
	fi
	for cmd in iptables ip6tables; do
		for t in filter nat mangle; do
			"$cmd-save" -t "$t" 2>/dev/null | awk -v c="$cmd" -v t="$t" '/^:LIBVIRT_/ { print "chain " c " " t " " substr($1, 2) }'
		done
	done
	ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^(virbr|vnet)/ { sub(/@.*/, "", $2); print "link " $2 }'
	# iptables-nft makes its tables on first use, libvirt's being the first
	# on a fresh machine.
	nft list tables 2>/dev/null | awk '($2 == "ip" || $2 == "ip6") && $3 ~ /^(filter|nat|mangle)$/ { print "table " $2 " " $3 }'
}

# remove_resource LINE removes one thing resources listed.
remove_resource() {
	local kind=$1 a=$2 b=${3:-} c=${4:-} rule
	case "$kind" in
	domain)
		"${VIRSH[@]}" destroy "$a" >/dev/null 2>&1 || true
		"${VIRSH[@]}" undefine "$a" --remove-all-storage --nvram >/dev/null 2>&1 ||
			"${VIRSH[@]}" undefine "$a" >/dev/null 2>&1 || true
		;;
	network)
		"${VIRSH[@]}" net-destroy "$a" >/dev/null 2>&1 || true
		"${VIRSH[@]}" net-undefine "$a" >/dev/null 2>&1 || true
		;;
	volume) "${VIRSH[@]}" vol-delete --pool "${a%%/*}" "${a#*/}" >/dev/null 2>&1 || true ;;
	pool)
		"${VIRSH[@]}" pool-destroy "$a" >/dev/null 2>&1 || true
		"${VIRSH[@]}" pool-undefine "$a" >/dev/null 2>&1 || true
		;;
	chain)
		# libvirt leaves its chains, and the jumps into them, after its
		# networks are gone; jumps first, then the chain.
		"$a-save" -t "$b" | awk -v c="$c" '$1 == "-A" && / -j / { for (i = 1; i < NF; i++) if ($i == "-j" && $(i+1) == c) print }' |
			while read -r rule; do
				# shellcheck disable=SC2086 # a rule is words
				"$a" -t "$b" -D ${rule#-A } 2>/dev/null || true
			done
		"$a" -t "$b" -F "$c" 2>/dev/null || true
		"$a" -t "$b" -X "$c" 2>/dev/null || true
		;;
	link) ip link delete "$a" 2>/dev/null || true ;;
	table)
		# Only while empty: another program may have put rules in since.
		local save=iptables-save
		[[ "$a" == ip6 ]] && save=ip6tables-save
		if ! "$save" -t "$b" 2>/dev/null | grep -q '^-A'; then
			nft delete table "$a" "$b" 2>/dev/null || true
		fi
		;;
	esac
}

WORK=""
BEFORE=""
DOT_VAGRANT_BEFORE=0
[[ -e "$REPO/.vagrant" ]] && DOT_VAGRANT_BEFORE=1
FORWARD_BEFORE=""
VM_UP=0

cleanup() {
	local rc=$? line left
	trap - EXIT INT TERM
	set +e
	if ((VM_UP)); then
		log "vagrant: destroying the VM"
		vagrant destroy -f 2>&1 | sed -u 's/\r/\n/g' | grep --line-buffered -v -e Progress -e '^$' >&2
	fi
	if [[ -n "$BEFORE" ]]; then
		# Domains before volumes (a domain's disk), before networks, pools
		# and chains; then the daemons, which leave chains behind.
		for kind in domain volume network pool; do
			resources | grep "^$kind " | grep -vxF -f "$BEFORE" | while read -r line; do
				log "cleanup: removing $line"
				# shellcheck disable=SC2086 # a resource line is words
				remove_resource $line
			done
		done
		stop_daemon "$STARTED_LIBVIRTD" libvirtd
		stop_daemon "$STARTED_VIRTLOGD" virtlogd
		for kind in chain link table; do
			resources | grep "^$kind " | grep -vxF -f "$BEFORE" | while read -r line; do
				# shellcheck disable=SC2086 # a resource line is words
				remove_resource $line
			done
		done
		if [[ -n "$FORWARD_BEFORE" && "$(sysctl -n net.ipv4.ip_forward)" != "$FORWARD_BEFORE" ]]; then
			# libvirt turns forwarding on for its NAT network.
			sysctl -q -w "net.ipv4.ip_forward=$FORWARD_BEFORE"
		fi
		left=$( { if libvirtd_up || [[ -z "$STARTED_LIBVIRTD" ]]; then resources; else resources | grep -E '^(chain|link|table) '; fi; } | grep -vxF -f "$BEFORE")
		if [[ -n "$left" ]]; then
			log "left behind after cleanup:"
			printf '  %s\n' "$left" >&2
			((rc)) || rc=1
		else
			log "cleanup: nothing left behind"
		fi
	fi
	[[ -n "$WORK" ]] && rm -rf "$WORK"
	# Vagrant makes .vagrant/ in the tree even with its state elsewhere.
	((DOT_VAGRANT_BEFORE)) || rm -rf "$REPO/.vagrant"
	exit "$rc"
}

# build_tests builds the e2e test binaries and, through their TestMain,
# everything they run (PEAPOD_E2E_BUILD_ONLY) into WORK/bin.
build_tests() {
	local bin="$WORK/bin"
	mkdir -p "$bin"
	go test -c -o "$bin/e2e.test" ./tests/e2e
	go test -c -o "$bin/probes.test" ./tests/probes_e2e
	(cd tests/e2e && PEAPOD_E2E_BUILD_ONLY="$bin/e2e" "$bin/e2e.test")
	(cd tests/probes_e2e && PEAPOD_E2E_BUILD_ONLY="$bin/probes" "$bin/probes.test")
}

PASSED=0
FAILED=0

# run_suite NAME PKGDIR BINARY PREBUILT RUN SKIP runs one test binary in
# the VM and counts its top-level results.
run_suite() {
	local name=$1 dir=$2 binary=$3 prebuilt=$4 regex=$5 skip=$6 out rc=0 p f
	out="$WORK/$name.log"
	log "$name: running -run '$regex' -skip '$skip' in the VM"
	vagrant ssh -c "cd /vagrant/$dir && sudo env CI=true PEAPOD_E2E_PREBUILT=$prebuilt $binary -test.v -test.count=1 -test.timeout=40m -test.run '$regex' -test.skip '$skip'" \
		>"$out" 2>&1 || rc=$?
	grep -vE '^=== (RUN|PAUSE|CONT|NAME)' "$out" || true
	p=$(grep -c '^--- PASS: ' "$out" || true)
	f=$(grep -c '^--- FAIL: ' "$out" || true)
	if ((rc != 0 && f == 0)); then
		log "$name: the test binary exited $rc with no failing test: counted as one failure"
		f=1
	fi
	if ((p + f == 0)); then
		log "$name: no test ran for -run '$regex'"
		f=1
	fi
	log "$name: $p passed, $f failed"
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
}

# check_guest fails unless the VM is what the suites are here for.
check_guest() {
	local facts
	# shellcheck disable=SC2016 # expanded in the VM
	facts=$(vagrant ssh -c 'printf "%s %s %s\n" "$(stat -fc %T /sys/fs/cgroup)" "$(ps -p 1 -o comm=)" "$(uname -r)"' 2>/dev/null | tr -d '\r')
	log "guest: cgroup fs, PID 1, kernel: $facts"
	read -r fs init kernel <<<"$facts"
	[[ "$fs" == cgroup2fs ]] || die "the VM's /sys/fs/cgroup is $fs, not pure cgroup v2"
	[[ "$init" == systemd ]] || die "the VM's PID 1 is $init, not systemd"
	[[ "$kernel" == 6.1.* ]] || log "note: the VM runs kernel $kernel, not Debian 12's 6.1"
}

main() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (libvirt, loop devices): sudo bash scripts/vagrant-test.sh"
	local t0=$SECONDS t
	libvirtd_up && LIBVIRTD_BEFORE=1
	virtlogd_up && VIRTLOGD_BEFORE=1
	ensure_packages "${HOST_PACKAGES[@]}"
	WORK=$(mktemp -d /tmp/peapod-vagrant-test.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	# Vagrant's state for this VM lives here, not in the tree.
	export VAGRANT_DOTFILE_PATH="$WORK/vagrant"
	export PEAPOD_VAGRANT_BOX="$BOX" PEAPOD_VAGRANT_TESTBIN="$WORK/bin"
	start_daemons
	BEFORE="$WORK/before"
	FORWARD_BEFORE=$(sysctl -n net.ipv4.ip_forward)
	resources >"$BEFORE"

	t=$SECONDS
	if [[ "$BOX" == peapod/* ]]; then
		bash scripts/vagrant-box.sh
	fi
	log "box: ready in $((SECONDS - t))s"
	t=$SECONDS
	build_tests
	log "build: binaries and test binaries in $((SECONDS - t))s"

	t=$SECONDS
	VM_UP=1
	vagrant up --provider libvirt --no-provision 2>&1 | sed -u 's/\r/\n/g' | grep --line-buffered -v -e Progress -e '^$' >&2
	log "vagrant up: $((SECONDS - t))s"
	check_guest

	t=$SECONDS
	run_suite e2e tests/e2e /peapod-test/e2e.test /peapod-test/e2e "$E2E_RUN" "$E2E_SKIP"
	run_suite probes_e2e tests/probes_e2e /peapod-test/probes.test /peapod-test/probes "$PROBES_RUN" ""
	log "suites in the VM: $((SECONDS - t))s"
	printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
	log "total: $((SECONDS - t0))s"
	((FAILED == 0))
}

main "$@"
