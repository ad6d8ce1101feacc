#!/usr/bin/env bash
# Run: bench/compare.sh   (from anywhere; needs go, make, hyperfine, awk:
# apt-get install -y hyperfine). Times nixflow against make on generated
# DAG shapes; writes hyperfine tables (<shape>.md, .csv, .json), the
# machine description and a summary to bench/_out/. Environment: RUNS
# (default 5), WARMUP (default 1), SHAPES (default "noop1000 chain fanout
# skewed"). go-task joins the comparison when installed. Exits non-zero if a run fails; a missed target is only reported.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=$root/bench/_out
runs=${RUNS:-5}
warmup=${WARMUP:-1}
shapes=${SHAPES:-noop1000 chain fanout skewed}

for tool in go make hyperfine awk; do
	if ! command -v "$tool" >/dev/null; then
		echo "compare.sh: $tool not found" >&2
		exit 1
	fi
done

mkdir -p "$out"
# go-task, if installed (go install github.com/go-task/task/v3/cmd/task@latest),
# runs the same DAGs from a generated Taskfile.yml.
task=$(command -v task || true)
if [[ -z $task && -x $(go env GOPATH)/bin/task ]]; then
	task=$(go env GOPATH)/bin/task
fi
nixflow=$out/nixflow
go build -o "$nixflow" ./cmd/nixflow

# nixflow keeps each run's state (logs, job workspaces) under
# XDG_STATE_HOME. Every nixflow command runs twice: with the state on the
# file system of the repository (as ~/.local/state would be), and with it
# on a tmpfs, which separates the file system's cost from nixflow's own.
# Each shape gets fresh directories.
state=$out/state
tmpfs_state=""
if [[ -d /dev/shm && -w /dev/shm ]]; then
	tmpfs_state=$(mktemp -d /dev/shm/nixflow-bench.XXXXXX)
fi
cleanup() {
	rm -rf "$state"
	if [[ -n $tmpfs_state ]]; then
		rm -rf "$tmpfs_state"
	fi
}
trap cleanup EXIT
rm -rf "$state"

{
	echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc:     $(nproc)"
	echo "cpu:       $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "memory:    $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "kernel:    $(uname -sr)"
	echo "go:        $(go version)"
	echo "make:      $(make --version | head -n1)"
	echo "bash:      $(bash --version | head -n1)"
	echo "hyperfine: $(hyperfine --version)"
	echo "state fs:  $(df -T "$out" | awk 'NR==2 {print $2}') ($out)"
	echo "tmpfs:     ${tmpfs_state:-none}"
	echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min, at start)"
} >"$out/machine.txt"
cat "$out/machine.txt"

# median NAME CSV: the median time in seconds of the command named NAME in
# a hyperfine CSV export; empty if there is no such command. The median
# resists the odd slow run of a shared machine better than the mean.
median() {
	awk -F, -v name="$1" 'NR > 1 && $1 == name {print $4}' "$2"
}

summary=$out/summary.txt
: >"$summary"
report() {
	echo "$*" | tee -a "$summary"
}

for shape in $shapes; do
	dir=$out/$shape
	info=$(go run ./bench/gen -shape "$shape" -out "$dir")
	jobs=$(sed -n 's/^jobs=//p' <<<"$info")
	critical=$(sed -n 's/^critical_path=//p' <<<"$info")
	levels_bound=$(sed -n 's/^levels_bound=//p' <<<"$info")
	echo
	echo "== $shape: $(tr '\n' ' ' <<<"$info")"

	disk=$state/$shape
	mkdir -p "$disk"
	run="$nixflow run --log-format simple"
	cmds=(
		-n "nixflow ready" "env XDG_STATE_HOME=$disk $run --max-parallel 0 $dir/graph.json"
		-n "nixflow levels" "env XDG_STATE_HOME=$disk $run --schedule levels --max-parallel 0 $dir/graph.json"
	)
	if [[ -n $tmpfs_state ]]; then
		mem=$tmpfs_state/$shape
		mkdir -p "$mem"
		cmds+=(
			-n "nixflow ready tmpfs" "env XDG_STATE_HOME=$mem $run --max-parallel 0 $dir/graph.json"
			-n "nixflow levels tmpfs" "env XDG_STATE_HOME=$mem $run --schedule levels --max-parallel 0 $dir/graph.json"
		)
	fi
	cmds+=(-n "make -j" "make -s -f $dir/Makefile -j")
	if [[ -n $task ]]; then
		cmds+=(-n "go-task" "$task --silent --taskfile $dir/Taskfile.yml")
	fi
	case $shape in
	noop1000 | fanout)
		# nixflow's default cap is the number of CPUs.
		cmds+=(
			-n "nixflow ready max2" "env XDG_STATE_HOME=$disk $run --max-parallel 2 $dir/graph.json"
			-n "make -j2" "make -s -f $dir/Makefile -j2"
		)
		;;
	esac
	hyperfine -N --warmup "$warmup" --runs "$runs" \
		--export-markdown "$out/$shape.md" --export-csv "$out/$shape.csv" --export-json "$out/$shape.json" \
		"${cmds[@]}"

	csv=$out/$shape.csv
	mk=$(median "make -j" "$csv")
	secs() {
		awk -v a="$1" 'BEGIN {printf "%.3f s", a}'
	}
	per_job() { # per_job A B: (A - B) / jobs, in ms
		awk -v a="$1" -v b="$2" -v n="$jobs" 'BEGIN {printf "%.3f ms", (a - b) / n * 1000}'
	}
	ratio() {
		awk -v a="$1" -v c="$critical" 'BEGIN {printf "%.3f", a / c}'
	}
	report ""
	report "$shape: $jobs jobs (median times), make -j $(secs "$mk")${critical:+, critical path $critical s, level-by-level bound $levels_bound s}, load $(cut -d' ' -f1-3 /proc/loadavg)"
	report "  ratios to make -j: nixflow ready $(awk -v a="$(median "nixflow ready" "$csv")" -v b="$mk" 'BEGIN {printf "%.2f", a / b}')$([[ -n $task ]] && awk -v a="$(median "go-task" "$csv")" -v b="$mk" 'BEGIN {printf ", go-task %.2f", a / b}')"
	for name in "nixflow ready" "nixflow levels" "nixflow ready tmpfs" "nixflow levels tmpfs"; do
		t=$(median "$name" "$csv")
		if [[ -z $t ]]; then
			continue
		fi
		if [[ -n $critical ]]; then
			report "  $(printf '%-21s' "$name") $(secs "$t"), wall / critical path $(ratio "$t")"
		else
			report "  $(printf '%-21s' "$name") $(secs "$t"), $(per_job "$t" "$mk") per job more than make -j"
		fi
	done
	if [[ $shape == noop1000 || $shape == fanout ]]; then
		p2=$(median "nixflow ready max2" "$csv")
		mk2=$(median "make -j2" "$csv")
		report "  nixflow ready max2    $(secs "$p2"), $(per_job "$p2" "$mk2") per job more than make -j2 ($(secs "$mk2"))"
	fi
	ready=$(median "nixflow ready" "$csv")
	if [[ $shape == noop1000 ]]; then
		verdict=$(awk -v a="$ready" -v b="$mk" -v n="$jobs" 'BEGIN {print ((a - b) / n < 0.002) ? "met" : "MISSED"}')
		report "  target, under 2 ms per job beyond process start (nixflow ready vs make -j): $verdict"
	fi
	if [[ -n $critical ]]; then
		report "  make -j               wall / critical path $(ratio "$mk")"
		verdict=$(awk -v a="$ready" -v c="$critical" 'BEGIN {print (a / c <= 1.05) ? "met" : "MISSED"}')
		report "  target, nixflow ready within 5% of the critical path: $verdict"
	fi
done

echo
echo "Tables: $out/<shape>.md; summary: $summary"
