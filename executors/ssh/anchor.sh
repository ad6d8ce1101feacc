# nixflow's anchor on a remote host: the command of the master connection's
# session. It reads the base directory and the step runner from standard
# input, creates the run's directory, reports what the host has, then waits
# for standard input to end (nixflow is done, died, or the connection
# dropped) and removes everything the run put on the host, but the
# workspaces kept on request.
set -u
IFS= read -r -d '' base || exit 1
IFS= read -r -d '' runner || exit 1
base=${base:-${TMPDIR:-/tmp}}
# shellcheck disable=SC2088 # a literal tilde, as the user wrote it
case $base in
"~") base=$HOME ;;
"~/"*) base=$HOME/${base#??} ;;
/*) ;;
# Relative: to the home, as ~/ (and as scp reads one); the steps change
# directories, so every path the run gives them is absolute.
*) base=${HOME:-$PWD}/$base ;;
esac
mkdir -p -- "$base" 2>/dev/null
run=$(umask 077 && mktemp -d "$base/nixflow.XXXXXXXX" 2>&1) || {
	printf 'nixflow-error cannot create a directory in %s: %s\n' "$base" "$run"
	exit 1
}
if ! { mkdir -m 700 "$run/ctl" "$run/tmp" && mkdir -m 755 "$run/jobs" &&
	printf '%s' "$runner" >"$run/ctl/step.sh"; } 2>/dev/null; then
	printf 'nixflow-error cannot write to %s (disk full?)\n' "$run"
	rm -rf -- "$run"
	exit 1
fi
have() { command -v "$1" >/dev/null 2>&1 && printf 1 || printf 0; }
printf 'nixflow-ready\n%s\n%s %s %s %s %s\n' "$run" "$(have tar)" "$(have setsid)" "$(have nix-store)" "$(have grep)" \
	"${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]}"

while IFS= read -r _; do :; done

for f in "$run"/ctl/*.pgid; do
	# (x and an exit status: the step's end)
	g= && IFS= read -r g 2>/dev/null <"$f"
	case $g in '' | x*) ;; *) kill -s KILL -- "-$g" 2>/dev/null ;; esac
done
for j in "$run"/jobs/*; do
	[ -e "$j" ] || continue
	[ -e "$run/ctl/kept.${j##*/}" ] && continue
	rm -rf -- "$j" 2>/dev/null || { chmod -R u+rwx -- "$j"; rm -rf -- "$j"; }
done
rm -rf -- "$run/tmp" "$run/ctl" 2>/dev/null || { chmod -R u+rwx -- "$run/tmp"; rm -rf -- "$run/tmp" "$run/ctl"; }
rmdir -- "$run/jobs" 2>/dev/null && rmdir -- "$run"
exit 0
