# nf_settle PID looks again at a process whose environment read empty. A
# process shows an empty one in the middle of executing a program, from
# the switch to the new address space to the setup of the environment in
# it (on a loaded machine that can take long), and 0 as its environment's
# end in its stat (field 51), as an exiting one does. One started with an
# empty environment (env -i) shows an end that is not 0 and stays. It
# reads the environment again, into the caller's array e, between two
# reads of stat, and fails if the process may still be executing a
# program.
nf_settle() {
  local before nf_end
  nf_env_end "$1" || return 0
  before=$nf_end
  [[ $before != 0 ]] || return 1
  { mapfile -d '' -t e <"/proc/$1/environ"; } 2>/dev/null || return 0
  ((${#e[@]} == 0)) || return 0
  nf_env_end "$1" || return 0
  [[ $nf_end == "$before" ]]
}

# nf_env_end PID sets nf_end to the end of the process's environment in
# its memory (field 51 of its stat; 0 while it executes a program, or
# without the field: before Linux 3.5), and fails if the process is gone,
# a zombie, exiting or a kernel thread: nothing to wait for.
nf_env_end() {
  local s f
  nf_end=
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
  # Split on spaces without a here-string (a temporary file, in bash
  # before 5.1: a full disk would fail it). The fields after the name are
  # numbers and one letter: nothing to glob. Field 3 is the state, field 9
  # the flags (PF_KTHREAD, PF_EXITING).
  # shellcheck disable=SC2206
  f=(${s##*) })
  [[ ${f[0]-Z} != [ZX] ]] || return 1
  ((!(${f[6]:-0} & 0x00200004))) || return 1
  nf_end=${f[48]:-0}
}
