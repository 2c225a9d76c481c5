#!/usr/bin/env bash
# provision.sh: make this Debian 12 machine ready to build, run and test
# peapod, then build and install it. README's commands, .ci/run and the
# Vagrantfile all call it; it is idempotent, and a second run that finds
# everything in place only rebuilds from Go's cache and takes seconds.
#
#   sudo bash scripts/provision.sh
#
# Environment:
#   PREFIX            install prefix of the binaries (default /usr/local)
#   PEAPOD_IMAGE_DIR  where the busybox test image tar goes (default /var/lib/peapod-images)
#   PEAPOD_VAGRANT=1  allow fetching Go (also implied by /vagrant existing)
#   GOPROXY           where Go comes from then (default Go's: proxy.golang.org)
set -euo pipefail

# The Go release go.mod asks for, and the sha256 of the zips the Go module
# proxy serves for it as the module golang.org/toolchain (the files `go
# mod download golang.org/toolchain@v0.0.1-go1.26.8.linux-amd64` fetches
# and checks against the checksum database). Provisioning fetches Go from
# $GOPROXY, not go.dev: wherever Go modules can be had, so can Go, and no Go
# is needed to get it. scripts/vagrant-box.sh reads these pins too.
readonly GO_PINNED_VERSION=1.26.8
readonly GO_PINNED_SHA256_TOOLCHAIN_AMD64=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7
readonly GO_PINNED_SHA256_TOOLCHAIN_ARM64=02b36b6787b3ac767668f630e2998df45a3b1f9ffee08d1bf3ef6487cd658d99
readonly GO_ROOT=/usr/local/go

# staticcheck v0.8.x (2026.1) is the first release built for Go 1.26.
readonly STATICCHECK_VERSION=v0.8.2

readonly PACKAGES=(
	busybox-static iproute2 nftables iptables containernetworking-plugins util-linux jq shellcheck ruby
	ca-certificates gcc libc6-dev musl-tools git docker-registry stress-ng bash-completion skopeo
)

log() { printf 'provision: %s\n' "$*"; }
die() {
	printf 'provision: error: %s\n' "$*" >&2
	exit 1
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly BIN_DIR="${PREFIX:-/usr/local}/bin"
readonly IMAGE_DIR="${PEAPOD_IMAGE_DIR:-/var/lib/peapod-images}"
# Never let the go command fetch a toolchain of its own: provision decides
# which Go is used, and machines without internet access must fail clearly.
export GOTOOLCHAIN=local

# version_ge A B: is version A at least B (both without the "go" prefix)?
version_ge() {
	[[ "$(printf '%s\n' "$1" "$2" | sort -V | head -n1)" == "$2" ]]
}

# go_mod_version prints the version of go.mod's `go` line.
go_mod_version() {
	awk '$1 == "go" { print $2; exit }' "$REPO/go.mod"
}

# go_version_of GO prints the version of a go binary, or nothing.
go_version_of() {
	local v
	v=$("$1" env GOVERSION 2>/dev/null) || return 0
	printf '%s\n' "${v#go}"
}

# find_go prints the first Go at or above version $1: on PATH, then GO_ROOT.
find_go() {
	local candidate v
	for candidate in "$(command -v go || true)" "$GO_ROOT/bin/go"; do
		[[ -n "$candidate" && -x "$candidate" ]] || continue
		v=$(go_version_of "$candidate")
		if [[ -n "$v" ]] && version_ge "$v" "$1"; then
			printf '%s\n' "$candidate"
			return 0
		fi
	done
}

in_vagrant() {
	[[ -d /vagrant || "${PEAPOD_VAGRANT:-}" == 1 ]]
}

# go_arch prints Go's name for this machine's architecture.
go_arch() {
	case "$(uname -m)" in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	*) die "no Go download known for architecture $(uname -m)" ;;
	esac
}

# go_proxy prints the first HTTP(S) proxy of GOPROXY (Go's default when
# unset), or nothing when GOPROXY names none (off, direct).
go_proxy() {
	local entry list=${GOPROXY:-https://proxy.golang.org,direct}
	# GOPROXY's entries are separated by , or |.
	for entry in ${list//[,|]/ }; do
		if [[ "$entry" == http://* || "$entry" == https://* ]]; then
			printf '%s\n' "$entry"
			return 0
		fi
	done
}

# install_go fetches the pinned Go from the Go module proxy (the module
# golang.org/toolchain, whose zip holds the release's tree under one
# directory), checks it against the pinned sha256 and unpacks it into
# GO_ROOT, replacing an older Go there.
install_go() {
	local version=$GO_PINNED_VERSION arch sha proxy mod url tmp
	arch=$(go_arch)
	case "$arch" in
	amd64) sha=$GO_PINNED_SHA256_TOOLCHAIN_AMD64 ;;
	arm64) sha=$GO_PINNED_SHA256_TOOLCHAIN_ARM64 ;;
	esac
	proxy=$(go_proxy)
	[[ -n "$proxy" ]] || die "GOPROXY=${GOPROXY-} names no proxy to fetch Go from: set GOPROXY to your Go module proxy, or install Go >= $(go_mod_version) into $GO_ROOT"
	ensure_packages curl ca-certificates unzip
	mod="v0.0.1-go${version}.linux-${arch}"
	url="${proxy%/}/golang.org/toolchain/@v/$mod.zip"
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064 # expand tmp now: it is local
	trap "rm -rf '$tmp'" EXIT
	log "go: downloading $url"
	curl -fsSL -o "$tmp/go.zip" "$url" || die "failed to download $url"
	echo "$sha  $tmp/go.zip" | sha256sum -c --quiet - || die "checksum mismatch for $url (want sha256 $sha)"
	unzip -q "$tmp/go.zip" -d "$tmp/root"
	[[ -x "$tmp/root/golang.org/toolchain@$mod/bin/go" ]] || die "$url holds no bin/go"
	rm -rf "$GO_ROOT.old"
	if [[ -e "$GO_ROOT" ]]; then mv "$GO_ROOT" "$GO_ROOT.old"; fi
	mv "$tmp/root/golang.org/toolchain@$mod" "$GO_ROOT"
	rm -rf "$GO_ROOT.old" "$tmp"
	trap - EXIT
	log "go: installed go${version} in $GO_ROOT from $proxy (sha256 verified)"
}

# setup_go sets GO to a Go at or above go.mod's version, installing one
# inside Vagrant.
setup_go() {
	local want
	want=$(go_mod_version)
	[[ -n "$want" ]] || die "no go line in $REPO/go.mod"
	GO=$(find_go "$want")
	if [[ -z "$GO" ]]; then
		in_vagrant || die "Go >= $want is needed: install it into $GO_ROOT (provision.sh fetches it from \$GOPROXY itself only inside Vagrant, or with PEAPOD_VAGRANT=1)"
		version_ge "$GO_PINNED_VERSION" "$want" ||
			die "go.mod asks for Go $want but provision.sh pins $GO_PINNED_VERSION: update GO_PINNED_VERSION and its sha256s"
		install_go
		GO="$GO_ROOT/bin/go"
	fi
	PATH="$(dirname "$GO"):$PATH"
	export PATH
	log "go: using $GO (go$(go_version_of "$GO"), go.mod wants $want)"
}

# apt_lists_fresh: were the package lists fetched in the last day?
apt_lists_fresh() {
	[[ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]]
}

# ensure_packages PKG... installs the Debian packages not installed yet.
ensure_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		log "packages: $* already installed"
		return 0
	fi
	if ! apt_lists_fresh; then
		log "packages: apt-get update"
		apt-get update -qq
	fi
	log "packages: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# install_binary SRC NAME installs SRC as BIN_DIR/NAME atomically (a rename,
# so a running peapod is never half-overwritten), unless it is unchanged.
install_binary() {
	local src=$1 name=$2 dst="$BIN_DIR/$2"
	if cmp -s "$src" "$dst"; then
		log "build: $dst unchanged"
		return 0
	fi
	install -m 0755 "$src" "$BIN_DIR/.$name.new"
	mv -f "$BIN_DIR/.$name.new" "$dst"
	log "build: installed $dst"
}

# build_commands builds peapod and its helpers with scripts/build.sh and
# installs them into BIN_DIR.
build_commands() {
	local out bin
	out=$(mktemp -d)
	# shellcheck disable=SC2064 # expand out now: it is local
	trap "rm -rf '$out'" EXIT
	mkdir -p "$BIN_DIR"
	(cd "$REPO" && GO="$GO" bash scripts/build.sh "$out")
	for bin in "$out"/*; do
		install_binary "$bin" "$(basename "$bin")"
	done
	rm -rf "$out"
	trap - EXIT
}

# install_staticcheck installs the pinned staticcheck into /usr/local/bin.
install_staticcheck() {
	local have
	have=$(/usr/local/bin/staticcheck -version 2>/dev/null || true)
	if [[ "$have" == *"(${STATICCHECK_VERSION#v})"* ]]; then
		log "staticcheck: $STATICCHECK_VERSION already installed"
		return 0
	fi
	log "staticcheck: installing $STATICCHECK_VERSION"
	GOBIN=/usr/local/bin "$GO" install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
}

# build_image builds the busybox test image tar when it is missing or older
# than what it is made of, and imports it when the CLI can.
build_image() {
	local mkimage="$REPO/scripts/mkimage-busybox.sh" tar="$IMAGE_DIR/busybox.tar"
	if [[ ! -f "$mkimage" ]]; then
		log "image: skipping (no scripts/mkimage-busybox.sh yet)"
		return 0
	fi
	mkdir -p "$IMAGE_DIR"
	if [[ -f "$tar" && "$tar" -nt "$mkimage" && "$tar" -nt /bin/busybox ]]; then
		log "image: $tar up to date"
	else
		bash "$mkimage" "$tar.new"
		mv -f "$tar.new" "$tar"
		log "image: built $tar"
	fi
	import_image "$tar"
}

# import_image TAR imports TAR as busybox:latest unless this very tar was
# imported into a store that still lists it.
import_image() {
	local tar=$1 peapod="$BIN_DIR/peapod" stamp="$1.imported" sum
	if [[ ! -x "$peapod" ]] || ! "$peapod" image import --help >/dev/null 2>&1; then
		log "image: skipping import (peapod image import not available yet)"
		return 0
	fi
	# The stamp names the config too: an import made before the default
	# command was set is done again.
	sum="$(sha256sum "$tar" | cut -d' ' -f1) cmd=sh"
	if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" ]] &&
		"$peapod" image ls 2>/dev/null | grep -q busybox; then
		log "image: busybox:latest already imported"
		return 0
	fi
	# The real busybox image's default command is sh: a manifest that sets
	# no command behaves the same with this one.
	"$peapod" image import "$tar" --name busybox:latest --change 'CMD ["sh"]'
	echo "$sum" >"$stamp"
	log "image: imported $tar as busybox:latest"
}

main() {
	[[ $(id -u) -eq 0 ]] || die "must run as root: sudo bash scripts/provision.sh"
	ensure_packages "${PACKAGES[@]}"
	setup_go
	install_staticcheck
	build_commands
	build_image
	log "done in ${SECONDS}s"
}

main "$@"
