#!/usr/bin/env bash
# build-kubelet.sh — build k8s.io/kubernetes/cmd/kubelet at the Kubernetes
# version go.mod's k8s.io libraries are at (k8s.io/api v0.X.Y is Kubernetes
# v1.X.Y) from the Go module proxy, into the tools cache the tests use:
#
#   ${PEAPOD_TOOLS:-/root/.cache/peapod-tools}/kubelet-v1.X.Y
#
# and print that path. A binary already there is reused, so only the first
# run pays the build (about 4 minutes on 2 cores). The kubelet test
# (cri/kubelet_test.go) runs it when the binary is missing; scripts/test.sh
# runs it before `go test`, so the build does not eat into go test's timeout.
#
# k8s.io/kubernetes is not meant to be a dependency: its go.mod replaces
# every staging module (k8s.io/api, k8s.io/client-go, ...) with a directory
# the module zip does not hold. A throwaway module outside the repository
# requires it and replaces each of those with the published staging module
# of the same release (v0.X.Y), which is the same source.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
export PATH="/usr/local/go/bin:$PATH"
GO=${GO:-go}

staging=$(awk '$1 == "k8s.io/api" { print $2; exit }' "$REPO/go.mod")
if [[ ! $staging =~ ^v0\.([0-9]+)\.([0-9]+)$ ]]; then
	echo "build-kubelet.sh: cannot tell the Kubernetes version from k8s.io/api $staging in $REPO/go.mod" >&2
	exit 1
fi
minor=${BASH_REMATCH[1]}
version="v1.$minor.${BASH_REMATCH[2]}"
tools=${PEAPOD_TOOLS:-/root/.cache/peapod-tools}
out="$tools/kubelet-$version"
if [[ -x $out ]]; then
	echo "$out"
	exit 0
fi
mkdir -p "$tools"

work=$(mktemp -d /tmp/peapod-kubelet-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0
"$GO" mod init peapod.test/kubelet-build >/dev/null 2>&1

mod=$("$GO" mod download -json "k8s.io/kubernetes@$version" | awk -F'"' '$2 == "GoMod" { print $4 }')
if [[ ! -f $mod ]]; then
	echo "build-kubelet.sh: no go.mod for k8s.io/kubernetes@$version from the module proxy" >&2
	exit 1
fi
# Each `k8s.io/X => ./staging/src/k8s.io/X` of Kubernetes' go.mod.
mapfile -t mods < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\/src\// { print $1 }' "$mod")
if ((${#mods[@]} == 0)); then
	echo "build-kubelet.sh: no staging replace in $mod" >&2
	exit 1
fi
edits=(-require "k8s.io/kubernetes@$version")
for m in "${mods[@]}"; do
	edits+=(-replace "$m=$m@$staging")
done
"$GO" mod edit "${edits[@]}"
cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kubelet"
EOF
"$GO" mod tidy -e >/dev/null 2>&1 || true
# -trimpath and no debug info: a smaller binary, the same behaviour; the
# version stamped as Kubernetes' own build does, so the kubelet reports it.
"$GO" build -trimpath -ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" -o "$work/kubelet" k8s.io/kubernetes/cmd/kubelet
mv "$work/kubelet" "$out.tmp.$$"
mv "$out.tmp.$$" "$out"
echo "$out"
