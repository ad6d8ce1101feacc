#!/usr/bin/env bash
# Run: bench/script.sh   (from anywhere; needs go, hyperfine, awk, bash).
# Times the compiled script (`nixflow compile`, run by bash) against
# `nixflow run` on the same workflow: JOBS (default 20) independent no-op
# local jobs, all allowed to run at once. Writes the hyperfine tables and
# a summary to bench/_out/script.*. Environment: JOBS, RUNS (default 10),
# WARMUP (default 2).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"
need go hyperfine awk bash
out=$root/bench/_out
jobs=${JOBS:-20}
runs=${RUNS:-10}
warmup=${WARMUP:-2}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nixflow=$(build_nixflow "$work")

# The workflow: JOBS jobs, one `true` step each, no copy of the repository.
{
	printf '{"version": 1, "name": "noop%d", "jobs": {' "$jobs"
	for ((i = 1; i <= jobs; i++)); do
		((i > 1)) && printf ','
		printf '"j%d": {"executor": {"type": "local", "copyRepo": false}, "steps": [{"name": "s", "bash": "true"}]}' "$i"
	done
	printf '}}\n'
} >"$work/noop.json"
"$nixflow" compile "$work/noop.json" -o "$work/noop.sh"

export XDG_STATE_HOME=$work/state NIXFLOW_KEEP=0
machine | tee "$out/script.machine"
hyperfine --runs "$runs" --warmup "$warmup" --style basic \
	--export-csv "$out/script.csv" --export-markdown "$out/script.md" \
	-n "nixflow run" "$nixflow run --log-format simple --max-parallel $jobs $work/noop.json >/dev/null" \
	-n "script" "bash $work/noop.sh --log-format simple --max-parallel $jobs >/dev/null"
run=$(median "nixflow run" "$out/script.csv")
scr=$(median "script" "$out/script.csv")
{
	echo "jobs: $jobs no-op, --max-parallel $jobs"
	echo "wall (median): nixflow run ${run}s, script ${scr}s: script/run $(ratio "$scr" "$run")"
	echo "cpu (mean):    nixflow run $(cpu "nixflow run" "$out/script.csv")s, script $(cpu script "$out/script.csv")s: script/run $(ratio "$(cpu script "$out/script.csv")" "$(cpu "nixflow run" "$out/script.csv")")"
} | tee "$out/script.summary"
