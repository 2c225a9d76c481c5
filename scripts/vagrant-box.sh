#!/usr/bin/env bash
# vagrant-box.sh: build the Debian 12 Vagrant box peapod's Vagrantfile uses
# where the public debian/bookworm64 box cannot be downloaded (an offline
# lab, CI), and add it to Vagrant as peapod/bookworm64 for libvirt.
#
#   sudo bash scripts/vagrant-box.sh
#   PEAPOD_VAGRANT_BOX=peapod/bookworm64 vagrant up
#
# Everything comes from where this host already gets its packages: Debian
# from the mirror its apt uses (debootstrap), Go from its Go module proxy
# (the golang.org/toolchain module's zip, checked against the sha256 pinned
# in provision.sh). The box holds what provision.sh would install (its
# Debian packages, Go, staticcheck), so provisioning inside the VM builds
# peapod only. It boots systemd on Debian's kernel 6.1 with a pure cgroup v2
# hierarchy (bookworm's default), DHCP on eth0, and a vagrant user with
# passwordless sudo and Vagrant's well-known insecure key (from Debian's
# vagrant package; Vagrant replaces it on first `vagrant up`).
#
# The box is cached outside the tree: it is rebuilt only when what it is
# made of changes (this script, provision.sh's packages and Go pin, the
# mirror, the host's extra CA certificates, Vagrant's key), and added again
# only when Vagrant does not have that very build.
#
# Environment:
#   PEAPOD_VAGRANT_CACHE   cache directory (default /var/cache/peapod-vagrant)
#   PEAPOD_VAGRANT_BOX     box name (default peapod/bookworm64)
#   PEAPOD_DEBIAN_MIRROR   Debian mirror (default: the one apt uses)
#   GOPROXY                Go module proxy (default: `go env GOPROXY`, else proxy.golang.org)
#
# Two quirks of the machines it was written on are handled on purpose, see
# make_disk and write_grub_cfg.
set -euo pipefail

readonly SUITE=bookworm
readonly DISK_GB=20
# Debian packages of the base system a Vagrant box needs; provision.sh's own
# list is added to them.
readonly BASE_PACKAGES=(
	linux-image-amd64 systemd systemd-sysv dbus openssh-server sudo rsync grub-pc
	ifupdown isc-dhcp-client curl unzip ca-certificates procps less
)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly CACHE="${PEAPOD_VAGRANT_CACHE:-/var/cache/peapod-vagrant}"
readonly BOX_NAME="${PEAPOD_VAGRANT_BOX:-peapod/bookworm64}"
readonly CA_DIR=/usr/local/share/ca-certificates

log() { printf 'vagrant-box: %s\n' "$*" >&2; }
die() {
	printf 'vagrant-box: error: %s\n' "$*" >&2
	exit 1
}

# provision_value NAME prints the value of provision.sh's `readonly NAME=`.
provision_value() {
	sed -n "s/^readonly $1=//p" "$REPO/scripts/provision.sh"
}

# provision_packages prints provision.sh's PACKAGES, one a line.
provision_packages() {
	sed -n '/^readonly PACKAGES=(/,/^)/p' "$REPO/scripts/provision.sh" | sed '1d;$d' | tr -s ' \t' '\n' | sed '/^$/d'
}

# debian_mirror prints the Debian mirror this host's apt uses.
debian_mirror() {
	local m
	if [[ -n "${PEAPOD_DEBIAN_MIRROR:-}" ]]; then
		printf '%s\n' "$PEAPOD_DEBIAN_MIRROR"
		return
	fi
	# deb822 sources first (Debian 12's default), then one-line sources;
	# the first one that is not the security archive.
	m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }')
	if [[ -z "$m" ]]; then
		m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk '$1 == "deb" && $2 !~ /security/ && $2 !~ /^\[/ { print $2; exit }')
	fi
	printf '%s\n' "${m:-http://deb.debian.org/debian}"
}

# go_proxy prints the first HTTP(S) entry of GOPROXY.
go_proxy() {
	local p=${GOPROXY:-}
	if [[ -z "$p" ]] && command -v go >/dev/null; then p=$(go env GOPROXY); fi
	p=${p:-https://proxy.golang.org}
	local entry
	# GOPROXY's entries are separated by , or |.
	for entry in ${p//[,|]/ }; do
		if [[ "$entry" == http://* || "$entry" == https://* ]]; then
			printf '%s\n' "$entry"
			return 0
		fi
	done
}

vagrant_key() {
	local k
	for k in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub; do
		[[ -f "$k" ]] && { printf '%s\n' "$k"; return 0; }
	done
	die "Vagrant's insecure public key not found: install Debian's vagrant package"
}

# cache_key prints a digest of everything the box is made of.
cache_key() {
	{
		cat "${BASH_SOURCE[0]}"
		provision_packages
		provision_value GO_PINNED_VERSION
		provision_value STATICCHECK_VERSION
		debian_mirror
		cat "$(vagrant_key)"
		cat "$CA_DIR"/*.crt 2>/dev/null || true
	} | sha256sum | cut -c1-16
}

# ---- building ---------------------------------------------------------

WORK=""
LOOP=""
MNT=""

cleanup() {
	local m
	if [[ -n "$MNT" ]]; then
		for m in dev/pts dev proc sys ""; do
			mountpoint -q "$MNT/$m" 2>/dev/null && umount -l "$MNT/$m"
		done
	fi
	if [[ -n "$LOOP" ]]; then
		partx -d "$LOOP" 2>/dev/null || true
		losetup -d "$LOOP" 2>/dev/null || true
	fi
	[[ -n "$WORK" ]] && rm -rf "$WORK"
	return 0
}

in_target() {
	chroot "$MNT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# make_disk RAW makes a raw disk with one ext4 partition and mounts it at MNT.
make_disk() {
	local raw=$1 part
	truncate -s "${DISK_GB}G" "$raw"
	printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$raw"
	LOOP=$(losetup -f --show "$raw")
	# Quirk: these kernels have no MSDOS partition support, so `losetup -P`
	# makes no partition device; partx reads the table itself and adds the
	# partition through BLKPG, which works everywhere. Without udev the
	# node may not appear by itself either.
	partx -a "$LOOP"
	part="${LOOP}p1"
	if [[ ! -b "$part" ]]; then
		local majmin
		majmin=$(cat "/sys/class/block/$(basename "$part")/dev")
		mknod "$part" b "${majmin%:*}" "${majmin#*:}"
	fi
	mkfs.ext4 -q -L root "$part"
	MNT="$WORK/mnt"
	mkdir -p "$MNT"
	mount "$part" "$MNT"
}

# write_grub_cfg UUID installs GRUB on LOOP and writes its configuration.
write_grub_cfg() {
	local uuid=$1
	cat >"$MNT/etc/default/grub" <<EOF
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="net.ifnames=0 biosdevname=0 console=tty0 console=ttyS0,115200"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
EOF
	in_target grub-install --target=i386-pc --modules="part_msdos ext2" "$LOOP"
	in_target update-grub
	# Quirk: without udev, update-grub cannot map the loop partition to its
	# UUID and writes root=/dev/loopNp1, which the VM does not have. Inside
	# the VM (with udev) a later update-grub writes UUIDs itself.
	sed -i -E "s#root=/dev/loop[0-9]+p1#root=UUID=$uuid#g" "$MNT/boot/grub/grub.cfg"
	grep -q "root=UUID=$uuid" "$MNT/boot/grub/grub.cfg" || die "grub.cfg does not boot root=UUID=$uuid"
}

configure_system() {
	local uuid=$1 key=$2
	echo peapod >"$MNT/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tpeapod\n' >"$MNT/etc/hosts"
	printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" >"$MNT/etc/fstab"
	printf 'auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n' \
		>"$MNT/etc/network/interfaces"
	# The vagrant user, as Vagrant's base box conventions ask.
	in_target useradd -m -s /bin/bash -G sudo vagrant
	echo 'vagrant:vagrant' | in_target chpasswd
	echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$MNT/etc/sudoers.d/vagrant"
	chmod 0440 "$MNT/etc/sudoers.d/vagrant"
	install -d -m 0700 "$MNT/home/vagrant/.ssh"
	install -m 0600 "$key" "$MNT/home/vagrant/.ssh/authorized_keys"
	in_target chown -R vagrant:vagrant /home/vagrant/.ssh
	printf 'UseDNS no\n' >"$MNT/etc/ssh/sshd_config.d/vagrant.conf"
	# Every VM made from the box gets host keys of its own on first boot.
	rm -f "$MNT"/etc/ssh/ssh_host_*
	cat >"$MNT/etc/systemd/system/ssh-host-keys.service" <<'EOF'
[Unit]
Description=Generate SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
RequiredBy=ssh.service
EOF
	in_target systemctl enable ssh-host-keys.service
	# No machine-id: each VM gets its own at first boot (and so its own
	# DHCP client id).
	: >"$MNT/etc/machine-id"
	rm -f "$MNT/var/lib/dbus/machine-id"
}

# install_go_and_tools puts the pinned Go from the Go proxy into
# /usr/local/go, and staticcheck, built on this host, into /usr/local/bin.
install_go_and_tools() {
	local version sha zip proxy url sc_version
	version=$(provision_value GO_PINNED_VERSION)
	sha=$(provision_value GO_PINNED_SHA256_TOOLCHAIN_AMD64)
	[[ -n "$version" && -n "$sha" ]] || die "no Go pin in provision.sh"
	zip="$CACHE/go${version}.linux-amd64.zip"
	if ! echo "$sha  $zip" | sha256sum -c --quiet - >/dev/null 2>&1; then
		proxy=$(go_proxy)
		[[ -n "$proxy" ]] || die "no HTTP Go proxy in GOPROXY"
		url="$proxy/golang.org/toolchain/@v/v0.0.1-go${version}.linux-amd64.zip"
		log "go: downloading $url"
		curl -fsSL -o "$zip.part" "$url" || die "failed to download $url"
		echo "$sha  $zip.part" | sha256sum -c --quiet - || die "checksum mismatch for $url"
		mv "$zip.part" "$zip"
	fi
	unzip -q "$zip" -d "$WORK/go"
	mv "$WORK/go/golang.org/toolchain@v0.0.1-go${version}.linux-amd64" "$MNT/usr/local/go"
	rm -rf "$WORK/go"
	sc_version=$(provision_value STATICCHECK_VERSION)
	if command -v go >/dev/null; then
		log "staticcheck: building $sc_version on the host"
		(cd "$WORK" && CGO_ENABLED=0 GOBIN="$MNT/usr/local/bin" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
			go install "honnef.co/go/tools/cmd/staticcheck@$sc_version") ||
			log "staticcheck: build failed; provision.sh will build it inside the VM"
	fi
}

build_box() {
	local out=$1 mirror key raw uuid security pkgs
	mirror=$(debian_mirror)
	key=$(vagrant_key)
	WORK=$(mktemp -d "$CACHE/build.XXXXXX")
	trap cleanup EXIT
	raw="$WORK/disk.raw"
	make_disk "$raw"
	uuid=$(blkid -s UUID -o value "${LOOP}p1")

	log "debootstrap $SUITE from $mirror"
	debootstrap --arch=amd64 "$SUITE" "$MNT" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
	mount --bind /dev "$MNT/dev"
	mount --bind /dev/pts "$MNT/dev/pts"
	mount -t proc proc "$MNT/proc"
	mount -t sysfs sysfs "$MNT/sys"
	# Nothing installed into the image may start a daemon on this host.
	printf '#!/bin/sh\nexit 101\n' >"$MNT/usr/sbin/policy-rc.d"
	chmod 0755 "$MNT/usr/sbin/policy-rc.d"

	security=${mirror%/debian}/debian-security
	{
		echo "deb $mirror $SUITE main"
		echo "deb $mirror $SUITE-updates main"
		[[ "$mirror" == */debian ]] && echo "deb $security $SUITE-security main"
	} >"$MNT/etc/apt/sources.list"
	# Outbound TLS may be intercepted: the host's extra CAs go in first.
	if compgen -G "$CA_DIR/*.crt" >/dev/null; then
		mkdir -p "$MNT/usr/local/share/ca-certificates"
		cp "$CA_DIR"/*.crt "$MNT/usr/local/share/ca-certificates/"
	fi
	mapfile -t pkgs < <(printf '%s\n' "${BASE_PACKAGES[@]}"; provision_packages)
	log "apt: installing ${#pkgs[@]} packages"
	in_target apt-get update -qq
	in_target apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >"$WORK/apt.log" 2>&1 ||
		{ tail -n 30 "$WORK/apt.log" >&2; die "apt-get install failed"; }
	in_target update-ca-certificates >/dev/null
	in_target apt-get clean

	install_go_and_tools
	configure_system "$uuid" "$key"
	write_grub_cfg "$uuid"
	rm -f "$MNT/usr/sbin/policy-rc.d"

	cleanup_mounts_only
	log "qcow2: converting"
	qemu-img convert -O qcow2 "$raw" "$WORK/box.img"
	printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d}\n' "$DISK_GB" >"$WORK/metadata.json"
	cat >"$WORK/Vagrantfile" <<'EOF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
  end
end
EOF
	tar -C "$WORK" -cf "$out.part" metadata.json Vagrantfile box.img
	mv "$out.part" "$out"
	cleanup
	WORK=""
	trap - EXIT
}

# cleanup_mounts_only unmounts the image and frees the loop device, keeping
# the work directory (the raw disk is converted next).
cleanup_mounts_only() {
	local m
	for m in dev/pts dev proc sys ""; do
		mountpoint -q "$MNT/$m" && umount "$MNT/$m"
	done
	MNT=""
	partx -d "$LOOP" || true
	losetup -d "$LOOP"
	LOOP=""
}

main() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, loop devices): sudo bash scripts/vagrant-box.sh"
	local tool key box added
	for tool in debootstrap qemu-img sfdisk partx losetup curl unzip vagrant; do
		command -v "$tool" >/dev/null || die "$tool not found: apt-get install -y debootstrap qemu-utils fdisk util-linux curl unzip vagrant"
	done
	[[ "$(uname -m)" == x86_64 ]] || die "the box is built for amd64 only"
	mkdir -p "$CACHE"
	key=$(cache_key)
	box="$CACHE/peapod-bookworm64-$key.box"
	added="$CACHE/added-$(tr / _ <<<"$BOX_NAME")"
	if [[ -f "$box" ]]; then
		log "$box is up to date"
	else
		log "building $box (about 2-5 minutes)"
		build_box "$box"
		# Older builds are of no more use.
		find "$CACHE" -maxdepth 1 -name 'peapod-bookworm64-*.box' ! -name "$(basename "$box")" -delete
		log "built $box in ${SECONDS}s"
	fi
	if [[ -f "$added" && "$(cat "$added")" == "$key" ]] &&
		vagrant box list 2>/dev/null | grep -q "^$BOX_NAME "; then
		log "Vagrant has $BOX_NAME ($key)"
	else
		vagrant box add --force --name "$BOX_NAME" "$box" >&2
		echo "$key" >"$added"
	fi
	log "done in ${SECONDS}s: PEAPOD_VAGRANT_BOX=$BOX_NAME vagrant up"
}

main "$@"
