#!/usr/bin/env bash
# Run: bench/plan.sh   (needs go, hyperfine, GNU time at /usr/bin/time).
# Times `nixflow plan` (text and --format json) of random DAGs of 1,000,
# 10,000 and 50,000 one-step jobs (bench/gen -shape random) and records
# the peak resident memory of each, with the memory per job. Environment:
# SIZES (default "1000 10000 50000"), RUNS (default 3).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/bench/lib.sh"
need go hyperfine awk /usr/bin/time
out=$root/bench/_out
mkdir -p "$out"
runs=${RUNS:-3}
nixflow=$(build_nixflow "$out")
machine | tee "$out/plan-machine.txt"
: >"$out/plan-summary.txt"
for n in ${SIZES:-1000 10000 50000}; do
	dir=$out/plan$n
	(cd "$root" && go run ./bench/gen -shape random -jobs "$n" -out "$dir") >/dev/null
	csv=$out/plan$n.csv
	hyperfine -N --warmup 1 --runs "$runs" --output null --export-csv "$csv" \
		-n "plan" "$nixflow plan $dir/graph.json" \
		-n "plan json" "$nixflow plan --format json $dir/graph.json"
	for what in plan "plan json"; do
		args=()
		if [[ $what == "plan json" ]]; then
			args=(--format json)
		fi
		kb=$(/usr/bin/time -f %M "$nixflow" plan "${args[@]}" "$dir/graph.json" 2>&1 >/dev/null | tail -n1)
		t=$(median "$what" "$csv")
		printf '%-10s %6d jobs: %6.3f s wall, %6.3f s CPU, %4.0f MB resident, %5.1f KB per job\n' "$what" "$n" "$t" "$(cpu "$what" "$csv")" \
			"$(awk -v k="$kb" 'BEGIN {print k / 1024}')" "$(awk -v k="$kb" -v n="$n" 'BEGIN {print k / n}')" |
			tee -a "$out/plan-summary.txt"
	done
done
