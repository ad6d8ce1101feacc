#!/usr/bin/env bash
# Run: bench/workspace.sh   (needs go, git, make, hyperfine, jq; run as root
# for overlay mounts). Measures a job's checkout (copyRepo) side by side
# with the same jobs without it, and with a Makefile laying out each
# job's checkout with `git worktree add` or `git clone --shared` (and
# removing it, as nixflow does at teardown). Repositories of 200 and
# 20,000 files are generated (one commit). Prints the cost per job of
# each way against the same jobs with no checkout, and nixflow's
# copyRepo / no-copy ratio. Then runs BenchmarkPrepareCopyRepo (overlay
# and copy, the snapshot already made). Environment: JOBS (default
# 1000, jobs on the 200-file repository), JOBS_BIG (default 100, on the
# 20,000-file one), RUNS (default 3), BENCHTIME (default 10x, of the Go
# benchmark).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/bench/lib.sh"
need go git make hyperfine jq awk flock
out=$root/bench/_out
mkdir -p "$out"
runs=${RUNS:-3}
nixflow=$(build_nixflow "$out")
work=$(mktemp -d "$out/workspace.XXXXXX")
trap 'rm -rf "$work"' EXIT

# repo DIR FILES JOBS: a git repository of FILES files in directories of
# 100, with a workflow of JOBS independent jobs running `true`, with and
# without copyRepo, and the Makefiles.
repo() {
	local dir=$1 files=$2 jobs=$3
	mkdir -p "$dir"
	awk -v dir="$dir" -v n="$files" 'BEGIN {
		for (i = 0; i < n; i++) {
			d = sprintf("%s/src/d%03d", dir, int(i / 100))
			if (i % 100 == 0) system("mkdir -p " d)
			f = sprintf("%s/f%05d.txt", d, i)
			printf "file %d\nsome content of a source file\n", i > f
			close(f)
		}
	}'
	for copy in true false; do
		jq -n --argjson n "$jobs" --argjson copy "$copy" '{version: 1, name: "workspace",
			jobs: ([range($n)] | map({key: "j\(.)", value: {executor: {type: "local", copyRepo: $copy}, steps: [{name: "run", bash: "true"}]}}) | from_entries)}' \
			>"$dir/copy-$copy.json"
	done
	git -C "$dir" init -q
	git -C "$dir" add .
	git -C "$dir" -c user.name=bench -c user.email=bench@example.com commit -q -m bench
	local targets
	targets=$(seq -f 'j%g' 0 $((jobs - 1)) | tr '\n' ' ')
	# Explicit rules: make skips pattern rules for phony targets.
	for how in none worktree clone; do
		local recipe
		case $how in
		none) recipe='true' ;;
		# git worktree add and remove are not safe to run in parallel on
		# one repository (they race on .git/worktrees): under a lock.
		worktree) recipe="flock $dir/.git/bench.lock git -C $dir worktree add -q --detach $work/wt/\$@ && true && flock $dir/.git/bench.lock git -C $dir worktree remove --force $work/wt/\$@" ;;
		clone) recipe="git clone -q --shared $dir $work/cl/\$@ && true && rm -rf $work/cl/\$@" ;;
		esac
		{
			echo "SHELL := /bin/bash"
			echo ".PHONY: all $targets"
			echo "all: $targets"
			for t in $targets; do
				printf '%s:\n\t@%s\n' "$t" "$recipe"
			done
		} >"$work/$(basename "$dir").$how.mk"
	done
}

machine | tee "$out/workspace-machine.txt"
echo "state fs:  $(df -T "$work" | awk 'NR==2 {print $2}')" | tee -a "$out/workspace-machine.txt"
: >"$out/workspace-summary.txt"
for spec in "200:${JOBS:-1000}" "20000:${JOBS_BIG:-100}"; do
	files=${spec%%:*} jobs=${spec##*:}
	dir=$work/repo$files
	repo "$dir" "$files" "$jobs"
	state=$work/state$files
	mkdir -p "$state" "$work/wt" "$work/cl"
	run="env XDG_STATE_HOME=$state $nixflow run --log-format simple --max-parallel 0"
	csv=$out/workspace$files.csv
	hyperfine -N --warmup 1 --runs "$runs" --output null \
		--export-markdown "$out/workspace$files.md" --export-csv "$csv" \
		-n "nixflow no copy" "$run $dir/copy-false.json" \
		-n "nixflow copyRepo" "$run $dir/copy-true.json" \
		-n "make -j no checkout" "make -s -j -f $work/repo$files.none.mk" \
		-n "make -j git worktree add" "make -s -j -f $work/repo$files.worktree.mk" \
		-n "make -j git clone --shared" "make -s -j -f $work/repo$files.clone.mk"
	base=$(median "nixflow no copy" "$csv")
	mbase=$(median "make -j no checkout" "$csv")
	per_job() {
		awk -v a="$1" -v b="$2" -v n="$jobs" 'BEGIN {printf "%.2f ms", (a - b) / n * 1000}'
	}
	{
		echo
		echo "workspace: $jobs jobs on a $files-file repository (median of $runs), load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
		c=$(median "nixflow copyRepo" "$csv")
		echo "  nixflow copyRepo           $(per_job "$c" "$base") per job more than no copy; copyRepo / no copy = $(ratio "$c" "$base") (CPU time: $(ratio "$(cpu "nixflow copyRepo" "$csv")" "$(cpu "nixflow no copy" "$csv")"))"
		for how in "git worktree add" "git clone --shared"; do
			t=$(median "make -j $how" "$csv")
			echo "  make -j $(printf '%-18s' "$how") $(per_job "$t" "$mbase") per job more than make -j with no checkout"
		done
	} | tee -a "$out/workspace-summary.txt"
	rm -rf "$state" "$work/wt" "$work/cl"
done

echo
echo "BenchmarkPrepareCopyRepo (executors/local):"
(cd "$root" && go test -run '^$' -bench BenchmarkPrepareCopyRepo -benchtime "${BENCHTIME:-10x}" ./executors/local) | grep -E '^Benchmark' | tee -a "$out/workspace-summary.txt"
