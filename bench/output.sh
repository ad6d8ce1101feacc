#!/usr/bin/env bash
# Run: bench/output.sh   (needs go, make, hyperfine, jq). Measures step
# output through nixflow side by side with the same command run by bash,
# by bash into cat (any reader of a pipe pays what cat pays) and by make,
# all to /dev/null: a step printing SIZE bytes (default 1 GB)
# of 64-byte build-log lines, without secrets and with 10 secrets to
# mask, in the simple and JSON console formats. nixflow also writes every
# line to the job's log file (on the file system of bench/_out unless
# STATE is set). Writes bench/_out/output.{md,csv} and a summary with
# throughputs and ratios to bash and to cat. Environment: SIZE, RUNS (default 3).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/bench/lib.sh"
need go make hyperfine jq awk
out=$root/bench/_out
mkdir -p "$out"
size=${SIZE:-1000000000}
runs=${RUNS:-3}
nixflow=$(build_nixflow "$out")
state=${STATE:-$out/state-output}
dir=$out/output
rm -rf "$state" "$dir"
mkdir -p "$state" "$dir"
trap 'rm -rf "$state"' EXIT

line='compiling src/module_0042/file_0042.c -> build/obj/file_0042.o ok'
print="yes '$line' | head -c $size || true"
secrets='for i in 0 1 2 3 4 5 6 7 8 9; do echo "::add-mask::s3cr3t-value-$i-xyzzy"; done; '
graph() { # graph FILE CMD
	jq -n --arg cmd "$2" '{version: 1, name: "output", jobs: {out: {executor: {type: "local", copyRepo: false}, steps: [{name: "print", bash: $cmd}]}}}' >"$1"
}
graph "$dir/plain.json" "$print"
graph "$dir/secrets.json" "$secrets$print"
printf 'SHELL := /bin/bash\n.SHELLFLAGS := --noprofile --norc -eo pipefail -c\nall:\n\t@%s\n' "${print//\$/\$\$}" >"$dir/Makefile"

machine | tee "$out/output-machine.txt"
run="env XDG_STATE_HOME=$state $nixflow run"
# Each run starts from an empty state directory: the logs of earlier runs
# (1.5 GB each) would fill the page cache and swing the figures.
# bash | tee: the same output kept in a file on the state's file system
# as well, as nixflow keeps it in the job's log (nixflow's log holds each
# line's time and step too: about 1.5 bytes a byte here).
log=$state/tee.log
hyperfine -N --warmup 1 --runs "$runs" --output null --prepare "rm -rf $state/nixflow $log" \
	--export-markdown "$out/output.md" --export-csv "$out/output.csv" \
	-n "bash" "bash --noprofile --norc -eo pipefail -c \"$print\"" \
	-n "bash | cat" "bash --noprofile --norc -eo pipefail -c \"{ $print; } | cat >/dev/null\"" \
	-n "bash | tee log" "bash --noprofile --norc -eo pipefail -c \"{ $print; } | tee $log >/dev/null\"" \
	-n "make" "make -s -f $dir/Makefile" \
	-n "nixflow simple" "$run --log-format simple $dir/plain.json" \
	-n "nixflow simple 10 secrets" "$run --log-format simple $dir/secrets.json" \
	-n "nixflow json" "$run --log-format json $dir/plain.json" \
	-n "nixflow json 10 secrets" "$run --log-format json $dir/secrets.json"

csv=$out/output.csv
bash_t=$(median "bash" "$csv")
cat_t=$(median "bash | cat" "$csv")
tee_t=$(median "bash | tee log" "$csv")
{
	echo
	echo "output: $size bytes of 64-byte lines, to /dev/null (median of $runs), load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	for name in "bash" "bash | cat" "bash | tee log" "make" "nixflow simple" "nixflow simple 10 secrets" "nixflow json" "nixflow json 10 secrets"; do
		t=$(median "$name" "$csv")
		c=$(cpu "$name" "$csv")
		printf '  %-26s %7.3f s %6.0f MB/s %6s x bash %6s x cat %6s x tee | CPU %7.3f s %6.0f MB/s\n' "$name" "$t" \
			"$(awk -v s="$size" -v t="$t" 'BEGIN {print s / t / 1e6}')" "$(ratio "$t" "$bash_t")" "$(ratio "$t" "$cat_t")" "$(ratio "$t" "$tee_t")" \
			"$c" "$(awk -v s="$size" -v t="$c" 'BEGIN {print s / t / 1e6}')"
	done
	echo "  (bash | cat: the same output read by a third process that only reads it, cat: the floor of any reader of the step's pipe on this machine;"
	echo "   bash | tee log: that reader also keeping it in a file, as nixflow keeps each job's log)"
} | tee "$out/output-summary.txt"
