#!/usr/bin/env bash
# fuzz.sh: run every Go fuzz target of the repository, one after another,
# each for DURATION (default 60s; a `go test -fuzztime` value, so "500x"
# counts runs instead):
#
#   sudo bash scripts/fuzz.sh [DURATION]
#
# Targets are the `func FuzzX(f *testing.F)` of the *_fuzz_test.go files;
# their seed corpora live in each package's testdata/fuzz/FuzzX/. A target
# that fails writes the failing input there: keep it (it is the regression
# test, run by every plain `go test`) and fix the cause. Root is needed for
# FuzzUnpackLayer to create device nodes and whiteouts; without it those
# entries fail to unpack, which the target accepts.
#
# Environment: FUZZ_PARALLEL=N fuzzing workers per target (default: the
# number of CPUs); FUZZ_MATCH=REGEXP runs only the targets it matches.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
cd "$REPO"
export PATH="/usr/local/go/bin:${PREFIX:-/usr/local}/bin:/usr/local/bin:$PATH"
export GOTOOLCHAIN=local

readonly DURATION=${1:-60s}
readonly MATCH=${FUZZ_MATCH:-.}
parallel=()
if [[ -n "${FUZZ_PARALLEL:-}" ]]; then
	parallel=(-parallel "$FUZZ_PARALLEL")
fi

# targets prints "PACKAGE-DIR TARGET" for every fuzz target.
targets() {
	grep -rE --include='*_fuzz_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
		sed -E 's|^\./(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*).*|\1 \2|' | sort
}

n=0
while read -r dir name; do
	[[ "$name" =~ $MATCH ]] || continue
	printf -- '--- %s (./%s, %s)\n' "$name" "$dir" "$DURATION"
	start=$SECONDS
	corpus="$dir/testdata/fuzz/$name"
	before=$(find "$corpus" -type f 2>/dev/null | sort || true)
	log=$(mktemp)
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$DURATION" "${parallel[@]}" "./$dir" 2>&1 | tee "$log"; then
		after=$(find "$corpus" -type f 2>/dev/null | sort || true)
		# Go's fuzz coordinator (before Go 1.27, go.dev/issue/75804) can fail a
		# target with a bare "context deadline exceeded" when -fuzztime ends
		# while a worker is mid-input: nothing was found and no input written.
		# A real finding writes its input (a hung input too: the coordinator
		# kills the worker and saves it), so only that failure is forgiven,
		# and only once the corpus replays clean.
		if [[ "$before" == "$after" ]] && grep -qx '    context deadline exceeded' "$log" &&
			! grep -q 'Failing input written to' "$log" &&
			go test -count=1 -run "^${name}\$" "./$dir"; then
			printf -- '--- %s: the fuzz coordinator'"'"'s deadline race (go.dev/issue/75804), no input found; the corpus replays clean\n' "$name"
		else
			rm -f "$log"
			exit 1
		fi
	fi
	rm -f "$log"
	printf -- '--- %s: ok (%ss with its build)\n' "$name" "$((SECONDS - start))"
	n=$((n + 1))
done < <(targets)
if ((n == 0)); then
	printf 'fuzz.sh: no fuzz target matches %q\n' "$MATCH" >&2
	exit 1
fi
printf 'fuzz.sh: %d targets passed\n' "$n"
