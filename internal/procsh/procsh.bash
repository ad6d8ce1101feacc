# nf_settle PID looks again at a process whose environment read empty. A
# process shows an empty one in the middle of executing a program: from
# the switch to the new address space to the setup of the environment in
# it (on a loaded machine that can take long), its stat shows 0 as its
# environment's end (field 51), as an exiting one's does; while the
# kernel writes the environment's pointers, an end that does not change
# yet. A process started with an empty environment (env -i) shows such an
# end for good. It reads the environment again, into the caller's array
# e, between two reads of stat. Its status: 0, settled (e holds what
# there is to see); 1, the process may be executing a program; 2, its
# environment is empty and its end the same on both reads: started with
# an empty one, or setting it up now (worth a few more looks, not more).
# A process whose main thread has ended is read through another thread
# (nf_thread_env).
nf_settle() {
  local before nf_end
  nf_env_end "$1"
  case $? in
    0) ;;
    2) nf_threads_env "$1"; return 0 ;;
    *) return 0 ;;
  esac
  before=$nf_end
  [[ $before != 0 ]] || return 1
  { mapfile -d '' -t e <"/proc/$1/environ"; } 2>/dev/null || return 0
  ((${#e[@]} == 0)) || return 0
  nf_env_end "$1" || return 0
  [[ $nf_end == "$before" ]] || return 1
  return 2
}

# nf_thread_env PID reads the environment of a process whose main thread
# has ended, into the caller's array e, through a live thread of it whose
# environment can be read, and fails if it has none. Such a process lives
# on in its other threads (after pthread_exit; and for a moment while one
# of them executes a program: the kernel ends the others, the main one
# first). Its own environment reads empty (before Linux 6.15) or cannot
# be opened (ESRCH; EACCES for a user other than root); its stat tells
# (nf_env_end). Unless the scan is root's, another user's process (its
# /proc directory is owned by its effective user) is not looked at: none
# of its threads' environments can be read, and a test of the owner costs
# much less than a read of the stat (most of a machine's processes are
# other users').
nf_thread_env() {
  local nf_end
  ((EUID == 0)) || [[ -O /proc/$1 ]] || return 1
  nf_env_end "$1"
  (($? == 2)) && nf_threads_env "$1"
}

# nf_threads_env PID: nf_thread_env's read, for a process whose main
# thread has ended.
nf_threads_env() {
  local t nf_end
  for t in "/proc/$1/task/"[0-9]*; do
    t=${t#/proc/}
    [[ ${t##*/} != "$1" ]] || continue
    nf_env_end "$t" || continue
    { mapfile -d '' -t e <"/proc/$t/environ"; } 2>/dev/null && return 0
  done
  return 1
}

# nf_env_end PID sets nf_end to the end of the process's environment in
# its memory (field 51 of its stat; 0 while it executes a program, or
# without the field: before Linux 3.5). It fails if the process is gone,
# a zombie, exiting or a kernel thread: nothing to wait for; with 2 if
# its main thread is a zombie or exiting while it has other threads (field
# 20), which it lives on in (see nf_thread_env).
nf_env_end() {
  local nf_f
  nf_end=
  nf_stat "$1" || return 1
  if [[ ${nf_f[0]} == [ZX] ]] || ((${nf_f[6]:-0} & 0x00200004)); then
    [[ ${nf_f[0]} != X ]] && ((!(${nf_f[6]:-0} & 0x00200000) && ${nf_f[17]:-1} > 1)) && return 2
    return 1
  fi
  nf_end=${nf_f[48]:-0}
}

# nf_gone PID tells whether the process has ended: no longer there, or a
# zombie or dead with no thread but its main one (field 20; a zombie main
# thread with others left is a process that still runs).
nf_gone() {
  local nf_f
  nf_stat "$1" || return 0
  [[ ${nf_f[0]} == [ZX] ]] && ((${nf_f[17]:-1} <= 1))
}

# nf_stat PID sets the caller's array nf_f to the fields of the process's
# stat after its name (nf_f[0] is field 3, the state; field N is
# nf_f[N-3]), and fails if it cannot be read.
nf_stat() {
  local s=''
  # The whole file: a process's name may hold a newline.
  { IFS='' read -r -d '' s <"/proc/$1/stat"; } 2>/dev/null
  [[ -n $s ]] || return 1
  # Split on spaces without a here-string (a temporary file, in bash
  # before 5.1: a full disk would fail it). The fields after the name are
  # numbers and one letter: nothing to glob.
  # shellcheck disable=SC2206
  nf_f=(${s##*) })
  ((${#nf_f[@]} > 0))
}
