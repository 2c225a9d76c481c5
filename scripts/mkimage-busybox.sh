#!/usr/bin/env bash
# mkimage-busybox.sh OUT.tar — build a small root filesystem tar from
# Debian's busybox-static: /bin/busybox with a symlink per applet, minimal
# /etc/passwd and /etc/group, and the usual empty mount-point directories.
# The tar is deterministic (sorted names, numeric root ownership, fixed
# mtime) so the same busybox always gives the same image ID.
set -euo pipefail

usage() {
	echo "usage: $0 OUT.tar" >&2
	exit 2
}

[[ $# -eq 1 ]] || usage
out=$1
busybox=/bin/busybox

if [[ ! -x $busybox ]]; then
	echo "installing busybox-static" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
# Only a static busybox works without the host's libraries in the image.
if ldd "$busybox" >/dev/null 2>&1; then
	echo "$busybox is dynamically linked; install busybox-static" >&2
	exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,dev,etc,proc,root,sys,tmp,var/www}
chmod 0755 "$stage" "$stage"/{bin,dev,etc,proc,sys,var,var/www}
chmod 0700 "$stage/root"
chmod 1777 "$stage/tmp"
install -m 0755 "$busybox" "$stage/bin/busybox"

while read -r applet; do
	[[ -n $applet && $applet != busybox ]] || continue
	ln -s /bin/busybox "$stage/bin/$applet"
done < <("$busybox" --list)

cat >"$stage/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$stage/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
chmod 0644 "$stage/etc/passwd" "$stage/etc/group"

tar --create --file="$out" --directory="$stage" \
	--sort=name --format=gnu --numeric-owner --owner=0 --group=0 \
	--mtime="@${SOURCE_DATE_EPOCH:-0}" .
echo "wrote $out" >&2
