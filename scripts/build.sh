#!/usr/bin/env bash
# build.sh: build peapod and its helpers from the Go module in the current
# directory into OUTDIR — the one place that says how they are built.
# scripts/provision.sh installs what it builds, scripts/bench.sh builds
# through provision.sh, and the e2e suites (internal/testutil.BuildPeapod)
# run it too, also with another release's tree as the current directory (the
# upgrade test), so it must not assume anything about that tree beyond
# cmd/<name>.
#
#   bash scripts/build.sh OUTDIR
#
# Environment:
#   GO   the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

# The binaries built from ./cmd/<name>; a directory a tree does not have
# (an older release) is skipped.
readonly COMMANDS=(peapod peapod-supervisor peapod-init peapod-cni peapod-prober peapod-cri)

log() { printf 'build: %s\n' "$*" >&2; }
die() {
	printf 'build: error: %s\n' "$*" >&2
	exit 1
}

# go_command prints the go command to use.
go_command() {
	if [[ -n "${GO:-}" ]]; then
		printf '%s\n' "$GO"
	elif command -v go >/dev/null; then
		command -v go
	else
		printf '%s\n' /usr/local/go/bin/go
	fi
}

# tree_version prints what `peapod version` says: git's description of this
# tree when it is a checkout's top (an extracted release inside another
# checkout must not take that checkout's name), else "dev".
tree_version() {
	local top
	top=$(git rev-parse --show-toplevel 2>/dev/null) || top=""
	if [[ -n "$top" && "$(cd "$top" && pwd -P)" == "$(pwd -P)" ]]; then
		git describe --always --dirty 2>/dev/null || echo dev
	else
		echo dev
	fi
}

# build_one GO OUTDIR NAME LDFLAGS builds ./cmd/NAME into OUTDIR/NAME.
build_one() {
	local go=$1 out=$2 name=$3 ldflags=$4
	# -buildvcs=false: inside Vagrant the synced tree belongs to another user
	# and git refuses it ("dubious ownership"), which would fail the build;
	# the version is stamped with -X instead, where git can tell it.
	local common=(build -trimpath -buildvcs=false)
	if [[ "$name" == peapod-init || "$name" == peapod ]]; then
		# peapod-init carries a cgo constructor (exec joins the mount
		# namespace before the Go runtime starts threads) and must run in
		# any container, so it is linked statically; osusergo and netgo keep
		# glibc's NSS (which cannot be linked statically) out. peapod
		# carries one too (cmd/peapod/internal/fastexec: a plain exec
		# without the CLI's Go start-up), and stays static like the rest.
		env "${CGO_ENV[@]}" CGO_ENABLED=1 "$go" "${common[@]}" -tags osusergo,netgo \
			-ldflags "-linkmode external -extldflags -static $ldflags" -o "$out/$name" "./cmd/$name"
	else
		# Pure Go, so static without a C toolchain.
		CGO_ENABLED=0 "$go" "${common[@]}" -ldflags "$ldflags" -o "$out/$name" "./cmd/$name"
	fi
}

# CGO_ENV is the environment of the cgo builds (set by cgo_setup).
CGO_ENV=()

# cgo_setup links the cgo binaries against musl where musl-gcc is installed
# (scripts/provision.sh installs musl-tools), else against glibc. The C
# library's start-up runs at every exec of peapod and peapod-init — every
# CLI command, container start, exec and exec probe — and a static glibc's
# takes ~0.55 ms more than musl's on a VM (measured here: a static
# `int main(){return 0;}` 0.79 ms with glibc, 0.26 ms with musl): its
# init_cpu_features and init_cacheinfo execute cpuid leaves, each a VM
# exit. musl-gcc leaves /usr/include out of its path, where the kernel's
# uapi headers are (linux-libc-dev), so KHDR links those three dirs alone.
cgo_setup() {
	local khdr=$1 multiarch
	if ! command -v musl-gcc >/dev/null; then
		log "musl-gcc not found (apt-get install musl-tools): linking peapod and peapod-init against glibc, ~0.5 ms slower to start"
		return 0
	fi
	multiarch=$(gcc -print-multiarch 2>/dev/null) || multiarch=""
	[[ -d /usr/include/linux && -d /usr/include/asm-generic && -d "/usr/include/$multiarch/asm" ]] ||
		die "musl-gcc needs the kernel's headers in /usr/include (apt-get install linux-libc-dev)"
	mkdir -p "$khdr"
	ln -s /usr/include/linux "$khdr/linux"
	ln -s /usr/include/asm-generic "$khdr/asm-generic"
	ln -s "/usr/include/$multiarch/asm" "$khdr/asm"
	CGO_ENV=(CC=musl-gcc "CGO_CFLAGS=-O2 -g -isystem $khdr")
}

main() {
	(($# == 1)) || die "usage: bash scripts/build.sh OUTDIR"
	local out=$1 go version ldflags name logs failed=0
	[[ -f go.mod ]] || die "no go.mod in $(pwd): run it from the module's root"
	go=$(go_command)
	version=$(tree_version)
	# -s -w: no symbol table or DWARF; helpers are copied into a sealed memfd
	# on every container start and exec, so every byte counts there.
	ldflags="-s -w -X main.version=$version"
	mkdir -p "$out"
	logs=$(mktemp -d)
	# shellcheck disable=SC2064 # expand logs now: it is local
	trap "rm -rf '$logs'" EXIT
	cgo_setup "$logs/khdr"
	local names=() pids=() i
	for name in "${COMMANDS[@]}"; do
		[[ -d "cmd/$name" ]] || continue
		build_one "$go" "$out" "$name" "$ldflags" >"$logs/$name" 2>&1 &
		names+=("$name")
		pids+=("$!")
	done
	((${#names[@]})) || die "no cmd/<name> in $(pwd)"
	for i in "${!names[@]}"; do
		name=${names[i]}
		if ! wait "${pids[i]}"; then
			log "failed to build $name:"
			cat "$logs/$name" >&2
			failed=1
		fi
	done
	((failed == 0)) || die "build failed"
	log "built ${names[*]} ($version) into $out"
}

main "$@"
