#!/usr/bin/env bash
# logic-under-load.sh: run the logic tier (every package's tests that need
# no root) COUNT times while stress-ng keeps every core busy.
#
#   sudo bash scripts/logic-under-load.sh            # COUNT=5, as CI runs it
#   sudo COUNT=50 bash scripts/logic-under-load.sh   # the full hunt for flakes
#
# A test that depends on the scheduler — a fake clock stepped before a
# worker armed its timer, a real timeout that must not fire, a poll that
# gives up — passes on an idle machine and fails once in dozens of runs on a
# busy one. Under load such a test fails here, every CI run, instead.
#
# The tests run as the unprivileged user nobody, so only the logic tier
# runs: every root test skips through testutil.RequireRoot (CI is unset for
# them, or the skips would fail), and a root test that forgot to call it
# fails here instead of skipping. The test binaries are built as the
# calling user; the sources are copied where nobody can read them, and the
# Go module cache is bind-mounted there in a private mount namespace (tests
# that run `go list` need it; /root is not readable by nobody). Every
# package runs even after a failure; the script fails at the end if any did.
#
# Environment:
#   COUNT      runs of each test (default 5)
#   LOAD_CPUS  stress-ng CPU workers (default: one per core)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly COUNT=${COUNT:-5}
readonly LOAD_CPUS=${LOAD_CPUS:-$(nproc)}
readonly NOBODY=65534
export GOTOOLCHAIN=local

die() {
	printf 'logic-under-load: error: %s\n' "$*" >&2
	exit 1
}

((EUID == 0)) || die "run as root: the tests run as nobody, which takes root to switch to"
command -v stress-ng >/dev/null || die "stress-ng is not installed (scripts/provision.sh installs it)"

work=$(mktemp -d /tmp/peapod-logic-XXXXXX)
stress_pid=""
cleanup() {
	if [[ -n "$stress_pid" ]]; then
		kill "$stress_pid" 2>/dev/null || true
		wait "$stress_pid" 2>/dev/null || true
	fi
	# The module cache is bind-mounted only inside each test's private
	# mount namespace; never delete through a mount that got out.
	if mountpoint -q "$work/modcache"; then
		printf 'logic-under-load: %s is a mount point: left in place\n' "$work/modcache" >&2
		return
	fi
	rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
mkdir -p "$work/bin" "$work/src" "$work/home" "$work/modcache" "$work/logs"
chown "$NOBODY:$NOBODY" "$work/home" "$work/logs"

cd "$REPO"
mapfile -t pkgs < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...)
module=$(go list -m)
modcache=$(go env GOMODCACHE)

# One go invocation builds every test binary (named after the package's
# last element, which go refuses if two packages share it).
go test -c -o "$work/bin/" "${pkgs[@]}"
chmod -R a+rX "$work/bin"
tar -C "$REPO" --exclude=./.git --exclude=./.vagrant -cf - . | tar -C "$work/src" --no-same-owner -xf -
chmod -R a+rX "$work/src"

stress-ng --cpu "$LOAD_CPUS" --timeout 1800s --quiet &
stress_pid=$!

failed=()
for pkg in "${pkgs[@]}"; do
	name=${pkg##*/}
	rel=${pkg#"$module"}
	bin="$work/bin/$name.test"
	[[ -x "$bin" ]] || continue
	start=$SECONDS
	# CI unset: for nobody a root test must skip, not fail.
	# shellcheck disable=SC2016 # the inner sh expands its own arguments
	if env -u CI HOME="$work/home" GOMODCACHE="$work/modcache" GOPROXY=off \
		unshare --mount --propagation private -- sh -c '
			mount --bind "$1" "$2" && cd "$3" &&
				exec setpriv --reuid="$4" --regid="$4" --clear-groups -- "$5" -test.count="$6" -test.timeout=10m' \
		sh "$modcache" "$work/modcache" "$work/src$rel" "$NOBODY" "$bin" "$COUNT" \
		>"$work/logs/$name.log" 2>&1 </dev/null; then
		printf 'ok    %-46s %3ss\n' "$pkg" "$((SECONDS - start))"
	else
		printf 'FAIL  %-46s %3ss\n' "$pkg" "$((SECONDS - start))"
		grep -E -- '^(--- FAIL|panic:|    .*_test\.go:[0-9]+:)' "$work/logs/$name.log" | sort | uniq -c | sort -rn | head -40 || true
		failed+=("$pkg")
	fi
done

if ((${#failed[@]} > 0)); then
	die "${#failed[@]} package(s) failed under load with -count=$COUNT: ${failed[*]}"
fi
printf 'logic tier passed %d times under %d stress-ng CPU workers\n' "$COUNT" "$LOAD_CPUS"
