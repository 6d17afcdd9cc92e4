#!/usr/bin/env bash
# Runs each fuzz target (package:FuzzName arguments) for FUZZTIME.
#
# Go up to 1.26 has a race in its fuzz coordinator (go.dev/issue/75804,
# fixed in 1.27): when -fuzztime runs out, a run that found nothing can
# still fail with a bare "context deadline exceeded". Such a run wrote no
# failing input under testdata/fuzz, so it is reported and not counted as a
# failure; any run that wrote an input (a new file in the corpus directory,
# which need not exist beforehand, or Go's "Failing input written" line,
# which also covers an input rewritten under a name already there), or
# failed any other way, fails.
set -uo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-8s}
status=0
for t in "$@"; do
	pkg=${t%%:*} name=${t##*:}
	dir="$pkg/testdata/fuzz/$name"
	before=$(ls "$dir" 2>/dev/null | sort)
	echo "fuzz $pkg $name ($FUZZTIME)"
	out=$("$GO" test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 5s "$pkg" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	((rc == 0)) && continue
	after=$(ls "$dir" 2>/dev/null | sort)
	if [[ $before == "$after" ]] && grep -q '^    context deadline exceeded$' <<<"$out" &&
		! grep -q 'Failing input written' <<<"$out"; then
		echo "fuzz $pkg $name: stopped by Go's fuzztime race (go.dev/issue/75804), no failing input; not a failure"
		continue
	fi
	status=1
done
exit $status
