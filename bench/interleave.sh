#!/usr/bin/env bash
# Run: bench/interleave.sh GRAPH BINARY...   (needs GNU time at
# /usr/bin/time). Compares nixflow binaries (two builds of different
# commits, say) on one job graph, interleaved: each round runs every
# binary once, with an empty state directory, so that a slow minute of a
# shared machine slows every binary alike, where two hyperfine runs a
# minute apart can differ by more than the change measured. A BINARY
# named `make` runs make -j on the Makefile beside GRAPH (bench/gen
# writes both). Prints the median wall and CPU time (user + system, of
# every process) of each, and its ratio to the first (give each binary
# once). Environment: ROUNDS (default 11); STATEBASE, where the state
# directory is made, and removed at the end (default /dev/shm, a tmpfs);
# PARALLEL, --max-parallel (default 0, every ready job).
#
#   go build -o /tmp/nixflow-old ./cmd/nixflow   # at the older commit
#   go build -o /tmp/nixflow-new ./cmd/nixflow
#   go run ./bench/gen -shape noop1000 -out /tmp/noop1000
#   bench/interleave.sh /tmp/noop1000/graph.json make /tmp/nixflow-old /tmp/nixflow-new
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/bench/lib.sh"
need awk /usr/bin/time
if (($# < 2)); then
	echo "usage: $(basename "$0") GRAPH BINARY..." >&2
	exit 2
fi
graph=$(realpath "$1")
shift
rounds=${ROUNDS:-11}
state=$(mktemp -d "${STATEBASE:-/dev/shm}/nixflow-interleave.XXXXXX")
times=$(mktemp)
trap 'rm -rf "$state" "$times"' EXIT

machine
declare -A wall cpu
for ((i = 0; i < rounds; i++)); do
	for b in "$@"; do
		rm -rf "${state:?}"/*
		if [[ $b == make ]]; then
			cmd=(make -s -j -C "$(dirname "$graph")" -f Makefile)
		else
			cmd=(env XDG_STATE_HOME="$state" "$b" run --max-parallel "${PARALLEL:-0}" "$graph")
		fi
		if ! /usr/bin/time -o "$times" -f '%e %U %S' "${cmd[@]}" >/dev/null 2>&1; then
			echo "$(basename "$0"): $b failed" >&2
			exit 1
		fi
		read -r e u s <"$times"
		wall[$b]+="$e "
		cpu[$b]+="$(awk -v u="$u" -v s="$s" 'BEGIN {print u + s}') "
	done
done

# med: the median of the numbers on standard input, one a word.
med() {
	tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
echo "$(basename "$graph"), $rounds rounds interleaved (medians), load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
base=""
for b in "$@"; do
	w=$(med <<<"${wall[$b]}")
	c=$(med <<<"${cpu[$b]}")
	base=${base:-$w}
	printf '  %-24s wall %6.3f s  CPU %6.3f s  %s x the first\n' "$b" "$w" "$c" "$(ratio "$w" "$base")"
done
