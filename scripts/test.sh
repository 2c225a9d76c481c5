#!/usr/bin/env bash
# test.sh: the whole test suite, as README's test command runs it:
#
#   sudo bash scripts/test.sh
#
# It provisions the machine (scripts/provision.sh), runs the static checks,
# the tests (the kernel tier needs root; under CI=true a skipped root test
# fails, see internal/testutil.RequireRoot), every benchmark once, and the
# e2e suites inside a Debian 12 VM (scripts/vagrant-test.sh;
# PEAPOD_VAGRANT_TEST=0 skips that outside CI). It stops at the first
# failing step.
#
#   bash scripts/test.sh --quick
#
# is the fast path for a contributor's machine, as a normal user: the static
# checks and the logic tier (kernel-tier tests skip without root), with no
# provisioning and no benchmarks. It needs Go, staticcheck and shellcheck.
set -euo pipefail

QUICK=0
case "${1:-}" in
--quick) QUICK=1 ;;
"") ;;
*)
	echo "usage: bash scripts/test.sh [--quick]" >&2
	exit 2
	;;
esac
readonly QUICK

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
cd "$REPO"
# sudo resets PATH: find the Go and the binaries provision.sh installs.
export PATH="/usr/local/go/bin:${PREFIX:-/usr/local}/bin:/usr/local/bin:$PATH"
export GOTOOLCHAIN=local
if ((QUICK)); then
	if [[ $(id -u) -eq 0 ]]; then
		echo "test.sh: --quick runs the logic tier without root; as root the kernel tier would run unprovisioned: run it as a normal user, or run the whole suite" >&2
		exit 2
	fi
	for tool in go gofmt staticcheck shellcheck; do
		command -v "$tool" >/dev/null || { echo "test.sh: $tool not found (scripts/provision.sh installs it)" >&2; exit 2; }
	done
	# Kernel-tier tests skip here by design; CI=true would fail each skip.
	unset CI
fi

step_start=$SECONDS
current=""

# step NAME: print a banner for the next step, and how long the last took.
step() {
	finish_step
	current=$1
	step_start=$SECONDS
	printf '\n==== %s ====\n' "$current"
}

finish_step() {
	if [[ -n "$current" ]]; then
		printf -- '---- %s: ok (%ss)\n' "$current" "$((SECONDS - step_start))"
	fi
}

on_exit() {
	local rc=$?
	if ((rc != 0)) && [[ -n "$current" ]]; then
		printf '\n==== FAILED: %s (exit %d) ====\n' "$current" "$rc" >&2
	fi
}
trap on_exit EXIT

if ((!QUICK)); then
	step "provision"
	bash scripts/provision.sh
fi

step "gofmt"
unformatted=$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -print0 | xargs -0 -r gofmt -l)
if [[ -n "$unformatted" ]]; then
	printf 'not gofmt-clean:\n%s\n' "$unformatted" >&2
	exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
staticcheck ./...

# go.mod and go.sum must be what go mod tidy makes of the imports: direct
# dependencies marked direct, nothing missing, nothing stale.
step "go mod tidy"
go mod tidy -diff

step "shellcheck"
shellcheck -x scripts/*.sh scripts/bench/*.sh .ci/run

if ((!QUICK)); then
	step "ruby -c Vagrantfile"
	ruby -c Vagrantfile
fi

# -p 1: one package's tests at a time. Kernel tests of different packages
# create bridges, cgroups and netns pins under distinct names and would not
# collide, but the leak snapshot (internal/testutil) diffs machine-wide state
# — mountinfo, links, /run/netns, processes — so another package's tests
# running beside it would show as leaks, or hide one. And CI has 2 cores:
# kernel tests wait on the kernel more than they compute, so running packages
# side by side would gain little there and make timings noisy.
# The kubelet cri/kubelet_test.go runs (k8s.io/kubernetes/cmd/kubelet at the
# Kubernetes release of go.mod's k8s.io libraries), built once into the
# tools cache: about 4 minutes on 2 cores the first time (5m45s measured
# while other builds shared the cores), nothing once cached. Here rather
# than inside go test, whose timeout it would eat into.
if ((!QUICK)); then
	step "kubelet (built once, cached)"
	bash scripts/build-kubelet.sh
fi

step "go test"
go test -count=1 -p 1 -timeout 20m ./...

# Every fuzz target briefly (their seed corpora already ran in "go test");
# longer: bash scripts/fuzz.sh 10m.
if ((!QUICK)); then
	step "fuzz"
	bash scripts/fuzz.sh 5s
fi

# The logic tier again, five times while stress-ng keeps both cores busy:
# a test that depends on the scheduler (a fake clock stepped before a worker
# armed its timer, a real timeout that must not fire) fails here, not once
# in forty runs on a busy machine. As nobody, so only the logic tier runs.
if ((!QUICK)); then
	step "logic tier under load"
	COUNT=5 bash scripts/logic-under-load.sh
fi

# Every benchmark once, so none of them rots: they must compile and run.
if ((!QUICK)); then
	step "benchmarks"
	go test -count=1 -p 1 -run '^$' -bench . -benchtime 1x -timeout 20m ./...
fi

# The e2e suites again inside a Debian 12 VM under Vagrant: systemd, a pure
# cgroup v2 hierarchy, kernel 6.1, the host most users have and CI's is not
# (scripts/vagrant-test.sh; about 16 minutes from a fresh machine where QEMU
# must emulate the VM, 11 with its box cached). Not inside that VM itself; outside CI, PEAPOD_VAGRANT_TEST=0 skips it.
if ((!QUICK)) && [[ ! -d /vagrant ]]; then
	if [[ "${CI:-}" == true || "${PEAPOD_VAGRANT_TEST:-1}" != 0 ]]; then
		step "e2e in a Debian 12 VM (systemd, cgroup v2)"
		bash scripts/vagrant-test.sh
	fi
fi

finish_step
current=""
printf '\n==== all steps passed in %ss ====\n' "$SECONDS"
