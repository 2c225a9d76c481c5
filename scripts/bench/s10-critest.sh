# shellcheck shell=bash
# Scenario 10: the critest half of the CRI anchor (issue 15). The same
# critest (cri-tools' validation suite from the tools cache, the same focus
# and skip expressions, the same images built from busybox and pushed to a
# local docker-registry that each daemon's registry config mirrors
# registry.k8s.io, k8s.gcr.io and gcr.io to, the same egress guard) against
# `peapod cri` and against Debian's containerd with its built-in CRI plugin
# and runc, one after the other in one `go test` run: TestCritest and
# TestCritestContainerd of cri/critest_test.go and
# cri/critest_containerd_test.go, which start private daemons (roots,
# sockets, bridges and subnets of their own, under /tmp), kill them by PID
# and check that nothing is left. Each writes its counts per spec group as
# JSON; the table puts them side by side.

# scenario10 runs both and appends the table and each runtime's failures.
scenario10() {
	local rc=0 v C10=$OUT/critest
	log "scenario 10: critest against peapod cri and containerd's CRI (same critest, focus, skip, images and mirror)"
	ensure_packages containerd docker-registry
	mkdir -p "$C10"
	# TestCritest fails on a failed spec of peapod's; the results are
	# written before that, and the table shows the failure.
	(cd "$REPO" && PEAPOD_CRITEST_CONTAINERD=1 PEAPOD_CRITEST_RESULTS="$C10" PEAPOD_E2E_SHARED_HOST=1 GOFLAGS=-buildvcs=false \
		go test -count=1 -timeout 45m -run '^TestCritest(Containerd)?$' -v ./cri) >"$C10/go-test.log" 2>&1 || rc=$?
	for v in peapod-cri containerd; do
		[[ -s "$C10/$v.json" ]] || die "scenario 10: no critest results for $v; go test said: $(tail -40 "$C10/go-test.log")"
	done
	if ((rc != 0)); then
		log "warning: scenario 10: go test exited $rc; its failures:"
		grep -E '^\s+critest_.*_test\.go:[0-9]+: ' "$C10/go-test.log" | grep -v 'critest against containerd' | head -20 >&2 || true
	fi
	s10_table "$C10/peapod-cri.json" "$C10/containerd.json" >>"$OUT/table.md"
	# The go test's output and containerd's log (its shims' too) outlive
	# the run's directory, for the failures' reasons.
	mkdir -p "$RESULTS/$STAMP-critest"
	cp "$C10"/*.json "$C10"/*.log "$RESULTS/$STAMP-critest/" 2>/dev/null || true
	log "scenario 10: critest's output and containerd's log in $RESULTS/$STAMP-critest"
}

# s10_table PEAPOD_JSON CONTAINERD_JSON prints the side-by-side table and
# each runtime's failed specs, one line each (the spec, and the rpc
# error's line of its message where there is one).
s10_table() {
	jq -rn --slurpfile p "$1" --slurpfile c "$2" --arg version "$CRICTL_VERSION" '
		$p[0] as $p | $c[0] as $c |
		def counts(r; g): [r.Groups[] | select(.Group == g) | "\(.Passed) / \(.Failed) / \(.Skipped)"][0] // "–";
		def total(r): reduce r.Groups[] as $x ([0, 0, 0]; [.[0] + $x.Passed, .[1] + $x.Failed, .[2] + $x.Skipped])
			| "**\(.[0])** / \(.[1]) / \(.[2]) in \(r.Seconds | round) s";
		def failures(r): if (r.Failed | length) == 0 then "- \(r.Runtime): none" else
			(r.Failed[] | split("\n") as $l
				| ([$l[1:][] | select(test("rpc error"))][0] // ($l[1:4] | map(sub("^\\s+"; "")) | join(" "))) as $why
				| "- \(r.Runtime): \($l[0])\(if $why == "" then "" else " " + ($why | sub("^\\s+"; "")) end)") end;
		([$p.Groups[].Group] + [$c.Groups[].Group] | unique) as $groups |
		"\n### Scenario 10: critest \($version) against peapod cri and \($c.Runtime)\n",
		"- focus: `\($p.Focus)`; skip: `\($p.Skip)`\(if $p.Skip != $c.Skip or $p.Focus != $c.Focus then " (containerd: `\($c.Focus)`, `\($c.Skip)`)" else "" end)",
		"- one spec failing twice counts once (ginkgo flake-attempts 2), its time twice\n",
		"| group | peapod cri: passed / failed / skipped | containerd: passed / failed / skipped |",
		"|---|---|---|",
		($groups[] as $g | "| \($g) | \(counts($p; $g)) | \(counts($c; $g)) |"),
		"| all | \(total($p)) | \(total($c)) |",
		"\nFailed specs:\n",
		failures($p), failures($c)'
}
