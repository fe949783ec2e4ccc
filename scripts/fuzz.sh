#!/usr/bin/env bash
# make fuzz: every Fuzz target of the module for FUZZTIME each, FUZZJOBS of them side by
# side (go test -fuzz takes one target of one package per run), with each target's
# executions. Fails when any target finds a crasher, which go test writes to the
# package's testdata/fuzz/FuzzXxx/. Logs go to $REPORT_DIR/fuzz/.
set -uo pipefail
GO=${GO:-go}
export GO FUZZTIME=${FUZZTIME:-1m} FUZZFLAGS=${FUZZFLAGS:-}
jobs=${FUZZJOBS:-1}
dir=${REPORT_DIR:-report}/fuzz
export dir
mkdir -p "$dir" && rm -f "$dir"/*.result
if ! $GO test -list '^Fuzz' ./... > "$dir/list.txt" 2>&1; then cat "$dir/list.txt"; exit 1; fi
# `go test -list` prints a package's Fuzz names, then "ok <package>".
targets=$(awk '/^Fuzz/ { names = names " " $1; next }
	/^ok / { n = split(names, a, " "); for (i = 1; i <= n; i++) print $2 "," a[i]; names = "" }' "$dir/list.txt")
if [ -z "$targets" ]; then echo "make fuzz: no Fuzz targets found"; exit 1; fi

one() {
	local pkg=${1%,*} name=${1#*,}
	local base="$name-${pkg##*/}"
	local log="$dir/$base.log" verdict=ok
	# shellcheck disable=SC2086 # FUZZFLAGS is a list of flags
	$GO test -run='^$' -fuzz="^$name\$" -fuzztime="$FUZZTIME" $FUZZFLAGS "$pkg" > "$log" 2>&1 || verdict=FAIL
	local note=""
	# Go 1.26's fuzz coordinator can fail a run with a bare "context deadline exceeded"
	# as -fuzztime ends, with no failing input (golang/go#75804, fixed in Go 1.27): that
	# is no finding. Anything else, and any input written to testdata, is.
	if [ $verdict = FAIL ] && ! grep -q 'Failing input written to' "$log" &&
		[ "$(grep -v '^fuzz: ' "$log" | grep -cv '^\(--- FAIL: .*\|    context deadline exceeded\|FAIL\|exit status 1\|FAIL[[:space:]].*\)$')" = 0 ]; then
		verdict=ok note=" (the run ended on golang/go#75804, no failing input)"
	fi
	local line
	line="$verdict $pkg $name: $(grep -o 'elapsed: [^,]*, execs: [0-9]*' "$log" | tail -1)$note"
	echo "$line" > "$dir/$base.result"
	echo "$line"
}
export -f one
echo "make fuzz: $(echo "$targets" | wc -l) targets, $FUZZTIME each, $jobs at a time"
echo "$targets" | xargs -P "$jobs" -I{} bash -c 'one "$1"' _ {}
rc=0
for f in "$dir"/*.result; do
	if grep -q '^FAIL' "$f"; then
		rc=1
		cat "$f"
		grep -v '^fuzz: elapsed' "${f%.result}.log"
	fi
done
exit $rc
