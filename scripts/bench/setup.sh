# shellcheck shell=bash
# setup.sh: scripts/bench.sh's set-up (packages, build, images, the
# anchors' configuration) and its cleanup, which checks that nothing of the
# run is left.

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
	(cd "$REPO" && go build -buildvcs=false -o "$BENCHTOOL" ./scripts/bench/benchtool)
	# One pod up and down: names this root's rootid for the cleanup check
	# and warms the caches.
	pp_run ppbench-first
	pp_facts ppbench-first >/dev/null
	pp_rm ppbench-first
	# shellcheck disable=SC2034 # cg_leave (tools.sh) moves the shell back here
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
	# Scenario 9's CRI daemons first: they remove their own pods.
	s9_cleanup
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
	# Scenario 8's docker-registry, by its PID.
	[[ -f "$OUT/registry.pid" ]] && kill "$(cat "$OUT/registry.pid")" 2>/dev/null
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
	if [[ -s "$OUT/rootid-cri" ]]; then ours+="|peapod-$(cat "$OUT/rootid-cri")"; fi
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
