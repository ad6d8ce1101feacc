# nixflow's step runner on a remote host. It reads the step from standard
# input (a count line, then NUL-terminated fields), runs it in a session of
# its own with the declared environment over the login environment, and
# obeys the control lines that follow (INT, TERM, KILL: signal the step's
# process group). When standard input ends before the step (the client or
# the connection is gone), the step is stopped. Nothing the step started
# outlives it: its process group, then the processes carrying its cookie,
# get SIGKILL. Declared values never appear on a command line.
set -u
# The runner's variables are named nf_*: a variable of the login
# environment it assigned would reach the step with the runner's value.
# Once the step is read, the runner's complaint goes to $nf_state.why for
# the client to fetch, not into the step's output.
fail() {
	if [ -n "${nf_state-}" ] && printf 'nixflow: %s\n' "$*" 2>/dev/null >"$nf_state.why"; then
		exit 255
	fi
	printf 'nixflow: %s\n' "$*" >&2
	exit 255
}
IFS= read -r nf_n || fail "no step on standard input"
nf_f=()
for ((nf_i = 0; nf_i < nf_n; nf_i++)); do
	IFS= read -r -d '' nf_x || fail "truncated step on standard input"
	nf_f+=("$nf_x")
done
nf_state=${nf_f[0]} nf_dir=${nf_f[1]} nf_cookie=${nf_f[2]} nf_ne=${nf_f[3]}
nf_env=("${nf_f[@]:4:nf_ne}")
nf_np=${nf_f[4 + nf_ne]}
nf_prepend=("${nf_f[@]:5+nf_ne:nf_np}")
nf_argv=("${nf_f[@]:5+nf_ne+nf_np}")
unset nf_f nf_x

nf_path=${PATH-}
for nf_kv in "${nf_env[@]}"; do
	case $nf_kv in PATH=*) nf_path=${nf_kv#PATH=} ;; esac
done
if ((nf_np)); then
	printf -v nf_p '%s:' "${nf_prepend[@]}"
	nf_path=${nf_p%:}${nf_path:+:$nf_path}
fi
# (The Go side knows this message: keep it in step with noWorkdir.)
if ! cd -P -- "$nf_dir" 2>/dev/null; then
	[ -e "$nf_dir" ] || fail "no such working directory: $nf_dir"
	[ -d "$nf_dir" ] || fail "no such working directory: $nf_dir is not a directory"
	fail "cannot enter the working directory $nf_dir (its permissions?)"
fi
command -v setsid >/dev/null 2>&1 || fail "setsid is not installed (util-linux)"

# From here on the runner writes nothing: bash's own notices about its jobs
# (a step killed by a signal, a watchdog killed) must not reach the step's
# output, and bash may print one as soon as the step is started. The step
# gets the runner's outputs; the runner keeps none of them open.
exec 4>&1 5>&2 >/dev/null 2>&1
(
	# Everything of the runner's in the arguments first: a declared value
	# may be named as one of its variables (nf_path, nf_argv, nf_cookie),
	# which is read no more once the values are set. A variable of that
	# name (an array of the runner's) is unset first: export would make
	# the value its first element, and pass nothing on.
	set -- "${nf_env[@]}" -- "$nf_path" "$nf_cookie" "${nf_argv[@]}"
	while [ "$1" != -- ]; do
		while declare -p "${1%%=*}" >/dev/null 2>&1; do unset -v "${1%%=*}" 2>/dev/null || break; done
		# shellcheck disable=SC2163 # $1 is NAME=VALUE
		export "$1" 2>/dev/null
		shift
	done
	export PATH="$2" NIXFLOW_STEP_COOKIE="$3"
	shift 3
	exec setsid "$@"
) </dev/null >&4 2>&5 3<&- 4>&- 5>&- &
pid=$!
exec 4>&- 5>&-
cookie=$nf_cookie pgidfile=$nf_state.pgid stopfile=$nf_state.stop state=$nf_state
printf '%s\n' "$pid" >"$pgidfile"

alive() { kill -0 -- "-$pid" 2>/dev/null; }
signal() {
	kill -s "$1" -- "-$pid" 2>/dev/null
	[ "$1" = KILL ] || kill -s CONT -- "-$pid" 2>/dev/null
}
# killcookie kills the processes carrying the step's cookie (escaped from
# its process group with setsid). Only processes started after the step can
# carry it: unless the pid counter wrapped, only their pids need a look.
# It looks again while a look finds a new one (a process may start another
# as it is killed) or one in the middle of executing a program, whose
# environment cannot be read yet (see nf_settle), for 5 s at most (4 to 5:
# SECONDS counts whole seconds); five times more when it finds one whose
# environment is empty for now (env -i, or being set up); then waits, 2 s
# at most, for the killed ones to end. Bash builtins only, but for the
# sleeps between looks: a process per step costs more than the scan.
killcookie() {
	local last p pids e kv new unsure empty tries=0 killed=() left round
	local -A seen=()
	local deadline=$((SECONDS + 5))
	[ -d /proc/self ] || return 0
	while :; do
		pids=() new=0 unsure=0 empty=0
		read -r last </proc/sys/kernel/ns_last_pid 2>/dev/null || last=
		if [ -n "$last" ] && ((last >= pid && last - pid < 4096)); then
			for ((p = pid + 1; p <= last; p++)); do
				[ -e "/proc/$p" ] && pids+=("$p")
			done
		else
			for p in /proc/[0-9]*; do pids+=("${p#/proc/}"); done
		fi
		for p in "${pids[@]}"; do
			{ mapfile -d '' -t e <"/proc/$p/environ"; } 2>/dev/null || nf_thread_env "$p" || continue
			if ((${#e[@]} == 0)); then
				nf_settle "$p"
				case $? in 1) unsure=1 ;; 2) empty=1 ;; esac
			fi
			for kv in "${e[@]}"; do
				if [ "$kv" = "NIXFLOW_STEP_COOKIE=$cookie" ]; then
					kill -s KILL "$p" 2>/dev/null
					if [ -z "${seen[$p]-}" ]; then
						seen[$p]=1 new=1
						killed+=("$p")
					fi
					break
				fi
			done
		done
		if ! ((new || unsure || (empty && tries++ < 5))) || ((SECONDS >= deadline)); then
			break
		fi
		((new)) || sleep 0.01
	done
	for ((round = 0; round < 200 && ${#killed[@]}; round++)); do
		left=()
		for p in "${killed[@]}"; do
			nf_gone "$p" || left+=("$p")
		done
		killed=("${left[@]}")
		((${#killed[@]} == 0)) || sleep 0.01
	done
}
# @procsh: internal/procsh's functions (nf_settle, nf_thread_env, ...) here.
{
	while IFS= read -r c; do
		case $c in
		INT | TERM)
			: >"$stopfile"
			signal "$c"
			;;
		KILL)
			# The escalation's end: a KILL in the stop file tells the
			# runner that nothing of the group is left to wait for.
			echo KILL >"$stopfile"
			signal KILL
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
	# Being stopped: the escalation goes on until the group is empty, or
	# until it ends with SIGKILL. The group is not waited for after that:
	# its members end at once, but a killed one stays in the group as a
	# zombie until its parent, or the init that adopted it, reaps it (an
	# init may take 1 to 2 s; a parent that left the group and never
	# waits, for ever). killcookie below kills such a parent.
	for ((i = 0; i < 3000; i++)); do
		if ! alive || [ -s "$stopfile" ]; then break; fi
		sleep 0.01
	done
fi
signal KILL
killcookie
kill "$wd" 2>/dev/null
# Not removed (rm would cost a process per step; the run's end removes
# the files): the step's exit status written over its process group id, in
# place (x, then the status: a kill of it fails), so that it takes no new
# space on a full disk, where the mark below may not be made.
printf 'x%s\n' "$rc" 1<>"$pgidfile"
if [ -e "$stopfile" ]; then rm -f -- "$stopfile"; fi
if [ "$rc" = 255 ]; then : >"$state.255"; fi
exit "$rc"
