# nixflow's step runner on a remote host. It reads the step from standard
# input (a count line, then NUL-terminated fields), runs it in a session of
# its own with the declared environment over the login environment, and
# obeys the control lines that follow (INT, TERM, KILL: signal the step's
# process group). When standard input ends before the step (the client or
# the connection is gone), the step is stopped. Nothing the step started
# outlives it: its process group, then the processes carrying its cookie,
# get SIGKILL. Declared values never appear on a command line.
set -u
fail() {
	printf 'nixflow: %s\n' "$*" >&2
	exit 255
}
IFS= read -r n || fail "no step on standard input"
f=()
for ((i = 0; i < n; i++)); do
	IFS= read -r -d '' x || fail "truncated step on standard input"
	f+=("$x")
done
state=${f[0]} dir=${f[1]} cookie=${f[2]} ne=${f[3]}
env=("${f[@]:4:ne}")
np=${f[4 + ne]}
prepend=("${f[@]:5+ne:np}")
argv=("${f[@]:5+ne+np}")
unset f

path=${PATH-}
for kv in "${env[@]}"; do
	case $kv in PATH=*) path=${kv#PATH=} ;; esac
done
if ((np)); then
	printf -v p '%s:' "${prepend[@]}"
	path=${p%:}${path:+:$path}
fi
cd -- "$dir" 2>/dev/null || fail "working directory $dir: no such directory"
command -v setsid >/dev/null 2>&1 || fail "setsid is not installed (util-linux)"

pgidfile=$state.pgid stopfile=$state.stop
(
	# shellcheck disable=SC2163 # kv is NAME=VALUE
	for kv in "${env[@]}"; do export "$kv" 2>/dev/null; done
	export PATH="$path" NIXFLOW_STEP_COOKIE="$cookie"
	exec setsid "${argv[@]}"
) </dev/null 3<&- &
pid=$!
printf '%s\n' "$pid" >"$pgidfile"

alive() { kill -0 -- "-$pid" 2>/dev/null; }
signal() {
	kill -s "$1" -- "-$pid" 2>/dev/null
	[ "$1" = KILL ] || kill -s CONT -- "-$pid" 2>/dev/null
}
killcookie() {
	local e p
	# shellcheck disable=SC2013 # /proc paths have no spaces
	for e in $(grep -lzxF "NIXFLOW_STEP_COOKIE=$cookie" /proc/[0-9]*/environ 2>/dev/null); do
		p=${e#/proc/}
		kill -s KILL "${p%/environ}" 2>/dev/null
	done
}

{
	while IFS= read -r c; do
		case $c in
		INT | TERM | KILL)
			: >"$stopfile"
			signal "$c"
			;;
		esac
	done
	# The client is gone: stop the step as on a timeout.
	: >"$stopfile"
	signal TERM
	for ((i = 0; i < 100; i++)); do alive || break; sleep 0.02; done
	signal KILL
	killcookie
} <&0 >/dev/null 2>&1 &
wd=$!

wait "$pid"
rc=$?
if [ -e "$stopfile" ]; then
	# Being stopped: the escalation goes on until the group is empty.
	for ((i = 0; i < 3000; i++)); do alive || break; sleep 0.01; done
fi
signal KILL
killcookie
kill "$wd" 2>/dev/null
rm -f -- "$pgidfile" "$stopfile"
if [ "$rc" = 255 ]; then : >"$state.255"; fi
exit "$rc"
