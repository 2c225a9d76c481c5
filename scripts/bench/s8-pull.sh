# shellcheck shell=bash
# Scenario 8: pull of a 5-layer image of ~150 MiB (random data, built and
# pushed by benchtool with go-containerregistry) from a docker-registry on
# loopback into an empty store: peapod image pull (hash, gunzip and untar
# in one stream) vs podman pull into an empty --root and skopeo copy to an
# OCI directory (which does not even unpack).

readonly PULL_RUNS=${BENCH_PULL_RUNS:-5} PULL_LAYERS=${BENCH_PULL_LAYERS:-5} PULL_MIB=${BENCH_PULL_MIB:-150}

# s8_registry starts docker-registry on a free loopback port; its PID goes
# to $OUT/registry.pid, which cleanup kills.
s8_registry() {
	local port
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$B/registry"
	cat >"$B/registry/config.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $B/registry/storage}}
http: {addr: 127.0.0.1:$port}
EOF
	# docker-registry reads REGISTRY_* variables as its configuration.
	env -u REGISTRY_AUTH_FILE docker-registry serve "$B/registry/config.yml" >"$OUT/registry.log" 2>&1 &
	echo $! >"$OUT/registry.pid"
	REG=127.0.0.1:$port
	wait_until 15 curl -fs -o /dev/null "http://$REG/v2/" || die "docker-registry did not start: $(cat "$OUT/registry.log")"
}

s8_peapod() { peapod --root "$B/pull/peapod" --run-root "$R/pull/peapod" image pull --quiet "$1" >/dev/null; }
s8_podman() {
	podman --root "$B/pull/podman" --runroot "$R/pull/podman" --tmpdir "$R/pull/podman-tmp" \
		pull --quiet --tls-verify=false "$1" >/dev/null
}
s8_skopeo() { skopeo copy --quiet --src-tls-verify=false "docker://$1" "oci:$B/pull/skopeo:pull"; }

# s8_clear empties every store, so each run pulls into an empty one.
s8_clear() {
	local d
	if [[ -d "$B/pull/podman" ]]; then
		podman --root "$B/pull/podman" --runroot "$R/pull/podman" rmi -a -f >/dev/null 2>&1 || true
	fi
	# Podman's overlay may leave a mount under its root.
	awk -v b="$B/pull/" -v r="$R/pull/" 'index($5, b) == 1 || index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r d; do umount -l "$d" || true; done
	rm -rf "$B/pull" "$R/pull"
	mkdir -p "$B/pull" "$R/pull"
	sync
}

scenario8() {
	local i v ref
	log "scenario 8: pull of a ${PULL_LAYERS}-layer ${PULL_MIB} MiB image, $PULL_RUNS runs (+1 warm-up) per variant"
	s8_registry
	"$BENCHTOOL" push-image "$REG/bench/pull:1" "$PULL_LAYERS" "$PULL_MIB" >/dev/null
	ref=$REG/bench/pull:1
	for ((i = 0; i < 1 + PULL_RUNS; i++)); do
		while read -r v; do
			s8_clear
			timed s8 "$v" $((i >= 1)) "s8_$v" "$ref"
		done < <(variants_rotated "$i" peapod podman skopeo)
	done
	s8_clear
	rm -rf "$B/pull" "$R/pull"
	kill "$(cat "$OUT/registry.pid")" && rm -f "$OUT/registry.pid"
	table s8 "Scenario 8: pull of a ${PULL_LAYERS}-layer ${PULL_MIB} MiB image from a local docker-registry into an empty store (podman pull into an empty --root; skopeo copy to an OCI dir)" \
		peapod podman skopeo >>"$OUT/table.md"
}
