#!/usr/bin/env bash
# What a Docker make target left behind: the labelled containers and networks of this
# make run's batch ($MAILFLOW_BATCH) that were not there when it started (BEFORE, a file
# of sorted IDs). Any container fails the target, and so does any network, except an
# empty one that the engine refuses to remove for "active endpoints": Docker 20.10
# counts a network's endpoints apart from the endpoints themselves, and a count left
# above zero (moby/moby#42119) keeps the network until the engine restarts. Such a
# network holds nothing of the run; it is named, with the reason, and not counted.
#
#   scripts/docker-leftovers.sh TARGET BEFORE
set -uo pipefail
target=${1:?usage: docker-leftovers.sh TARGET BEFORE}
before=${2:?usage: docker-leftovers.sh TARGET BEFORE}
: "${MAILFLOW_BATCH:?MAILFLOW_BATCH is not set}"
now=$({ docker ps -aq --filter label=org.mailflow.server --filter "label=org.mailflow.batch=$MAILFLOW_BATCH"
	docker network ls -q --filter label=org.mailflow.network --filter "label=org.mailflow.batch=$MAILFLOW_BATCH"; } | sort)
left=$(comm -13 "$before" <(echo "$now") | sed '/^$/d')
rm -f "$before"
bad=""
for id in $left; do
	if n=$(docker network inspect -f '{{len .Containers}}' "$id" 2>/dev/null) && [ "$n" = 0 ]; then
		if out=$(docker network rm "$id" 2>&1); then
			bad="$bad $id(network, removed only now)"
		elif grep -q 'active endpoints' <<<"$out"; then
			echo "make $target: warning: network $id is empty but the engine keeps counting endpoints on it (moby/moby#42119); it goes when the engine restarts"
		else
			bad="$bad $id(network: $out)"
		fi
		continue
	fi
	bad="$bad $id"
done
if [ -n "$bad" ]; then
	echo "make $target: left behind (containers and networks):$bad"
	exit 1
fi
