# Shared by the bench/ scripts (sourced): tool checks, the machine
# description, medians of hyperfine CSV exports, ratios.

# need TOOL...: exit if a tool is missing.
need() {
	for tool in "$@"; do
		if ! command -v "$tool" >/dev/null; then
			echo "$(basename "$0"): $tool not found" >&2
			exit 1
		fi
	done
}

# machine: describe the machine, with its load now (the load of a shared
# machine changes absolute figures; ratios measured side by side in the
# same run change much less).
machine() {
	echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc:     $(nproc)"
	echo "cpu:       $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "memory:    $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "kernel:    $(uname -sr)"
	echo "go:        $(go version)"
	echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
}

# median NAME CSV: the median time in seconds of the command named NAME in
# a hyperfine CSV export; empty if there is no such command.
median() {
	awk -F, -v name="$1" 'NR > 1 && $1 == name {print $4}' "$2"
}

# cpu NAME CSV: the mean CPU time (user + system, children included) in
# seconds of the command named NAME in a hyperfine CSV export. On a
# loaded machine wall times stretch with the load; CPU times much less.
cpu() {
	awk -F, -v name="$1" 'NR > 1 && $1 == name {print $5 + $6}' "$2"
}

# ratio A B: A / B with two decimals.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'
}

# build_nixflow DIR: build nixflow into DIR; prints its path.
build_nixflow() {
	go build -o "$1/nixflow" "$root/cmd/nixflow"
	echo "$1/nixflow"
}
