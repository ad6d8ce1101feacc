# ---------------------------------------------------------------------------
# The nixflow script runtime. Everything below is function definitions; the
# last line of the script calls nf_main, so that a shell reading the script
# from a pipe (ssh HOST < SCRIPT) has read all of it before anything runs.
# ---------------------------------------------------------------------------

nf_usage() {
  cat <<USAGE
Run the nixflow workflow "$nf_name" (plan sha256 ${nf_plan_hash:0:12}).

usage: bash SCRIPT [flags]     or: ssh HOST bash -s -- [flags] < SCRIPT

  --env KEY=VALUE        set a variable for every step, over the workflow's values (repeatable)
  --env-file FILE        read variables from a dotenv file, over the workflow's values (repeatable)
  --max-parallel N       how many jobs run at once (0: no limit; env NIXFLOW_MAX_PARALLEL)
  --schedule MODE        ready (default) or levels
  --log-format FORMAT    structured, simple or json (env NIXFLOW_LOG_FORMAT; default: the workflow's, else structured)
  --events FILE          write job and step events to FILE as JSON lines
  --keep-workspace       keep job workspaces in the run directory
  --interrupt-grace D    on Ctrl-C, how long steps get after SIGINT before SIGTERM (7.5s)
  --terminate-grace D    how long steps get after SIGTERM before SIGKILL (2.5s)
  --artifacts-dir DIR    at the end, copy every artifact to DIR/<name>
  --junit FILE           write the run's result as JUnit XML to FILE
  --groups CI            replay each job's log in a collapsible section at the end:
                         auto (default: the CI this runs in), github, gitlab, buildkite, none
  --repo DIR             the working tree jobs start from (default: the current directory)
  --run-dir DIR          where the run's logs and artifacts go

The run directory is printed at the end; NIXFLOW_KEEP=0 removes it then.
Exit status: 0 success, 1 a job failed, 2 bad usage, 3 infrastructure, 130 interrupted.
USAGE
}

nf_die_usage() {
  printf 'error: %s\n' "$1" >&2
  shift
  (($#)) && printf 'hint: %s\n' "$@" >&2
  exit 2
}

# nf_now sets nf_t to the time in milliseconds.
nf_now() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    local t=${EPOCHREALTIME/[.,]/}
    nf_t=$((10#$t / 1000))
  else
    nf_t=$(date +%s%3N)
  fi
}

# nf_parse_duration TEXT sets nf_d to the milliseconds of a duration as
# Go's time.ParseDuration reads it (nixflow run's flags): numbers with
# units, ns, us (µs), ms, s, m, h, one after the other (1m30s, 1.5h,
# 300ms), or 0; a number without a unit is not one.
nf_parse_duration() {
  local rest=$1 num unit whole frac f ns=0
  if [[ $rest == 0 ]]; then nf_d=0; return 0; fi
  [[ -n $rest ]] || return 1
  while [[ -n $rest ]]; do
    [[ $rest =~ ^([0-9]*(\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h) ]] || return 1
    num=${BASH_REMATCH[1]} unit=${BASH_REMATCH[3]}
    [[ $num == *[0-9]* ]] || return 1
    rest=${rest:${#BASH_REMATCH[0]}}
    whole=${num%%.*} frac=''
    [[ $num == *.* ]] && frac=${num#*.}
    frac=${frac}000000000
    frac=$((10#${frac:0:9}))
    ((${#whole} <= 12)) || return 1
    whole=$((10#${whole:-0}))
    # Past what a Go duration holds (about 292 years), as
    # time.ParseDuration refuses it.
    case $unit in
      ns) f=1 ;;
      us | µs | μs) f=1000 ;;
      ms) f=1000000 ;;
      s) f=1000000000 ;;
      m) f=60000000000 ;;
      h) f=3600000000000 ;;
    esac
    ((whole <= 9223372036854775807 / f)) || return 1
    if ((f >= 1000000000)); then
      ns=$((ns + whole * f + frac * (f / 1000000000)))
    else
      ns=$((ns + whole * f + frac * f / 1000000000))
    fi
    ((ns >= 0)) || return 1
  done
  nf_d=$((ns / 1000000))
}

# nf_fmt_ms MS sets nf_f to the duration as Go's time.Duration prints it.
nf_fmt_ms() {
  local ms=$1 h m s frac out=''
  if ((ms == 0)); then nf_f=0s; return; fi
  if ((ms < 1000)); then nf_f=${ms}ms; return; fi
  h=$((ms / 3600000)) m=$((ms / 60000 % 60)) s=$((ms / 1000 % 60)) frac=$((ms % 1000))
  ((h > 0)) && out+=${h}h
  ((h > 0 || m > 0)) && out+=${m}m
  out+=$s
  if ((frac > 0)); then
    printf -v frac '%03d' "$frac"
    while [[ $frac == *0 ]]; do frac=${frac%0}; done
    out+=.$frac
  fi
  nf_f=${out}s
}

# nf_round_ms MS sets nf_f to a duration rounded for people, as the Go
# summary rounds it.
nf_round_ms() {
  local ms=$1
  if ((ms >= 60000)); then
    ms=$(((ms + 500) / 1000 * 1000))
  elif ((ms >= 1000)); then
    ms=$(((ms + 5) / 10 * 10))
  fi
  nf_fmt_ms "$ms"
}

# nf_secs MS sets nf_s to MS as seconds with a fraction, for read -t.
nf_secs() {
  printf -v nf_s '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

# nf_sleep_ms MS waits without starting a process.
nf_sleep_ms() {
  (($1 > 0)) || return 0
  nf_secs "$1"
  read -r -t "$nf_s" -u "$nf_sleep_fd" _ || true
}

# nf_goquote TEXT sets nf_q to TEXT quoted as Go's %q would, for names
# and paths: ASCII control characters escaped, and U+00A0 and U+0085;
# not other characters Go finds unprintable, nor bytes that are not
# UTF-8 (Go writes those as \u and \x escapes).
nf_goquote() {
  local s=$1 c x cre=$'[\x01-\x1f\x7f]'
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  if [[ $s == *[$'\x01'-$'\x1f'$'\x7f']* ]]; then
    s=${s//$'\a'/\\a} s=${s//$'\b'/\\b} s=${s//$'\f'/\\f} s=${s//$'\v'/\\v}
    while [[ $s =~ $cre ]]; do
      c=${BASH_REMATCH[0]}
      printf -v x '\\x%02x' "'$c"
      s=${s//"$c"/$x}
    done
  fi
  # The two characters Go writes as \u that a key can hold.
  s=${s//$'\xc2\xa0'/\\u00a0}
  s=${s//$'\xc2\x85'/\\u0085}
  nf_q="\"$s\""
}

# --- masking ---------------------------------------------------------------

# nf_add_mask VALUE adds a secret, line by line (each without the blanks
# around it); it returns 1 when no line is long enough to mask, as
# nixflow run does. The order of nf_masks is of no matter (nf_mask marks
# every occurrence of each); nf_mask_set holds the same values, to tell
# one already there without a look at each (a certificate bundle's
# thousands of lines took a minute so).
nf_add_mask() {
  # Lengths in bytes, as nixflow run counts them ("€€" is long enough).
  local LC_ALL=C line short=0 masked=0
  nf_sync_mask_set
  nf_lines "$1"
  for line in "${nf_lines[@]}"; do
    nf_trim_space "$line"
    line=$nf_ts
    [[ -n $line ]] || continue
    if ((${#line} < 4)); then short=1; continue; fi
    masked=1
    [[ -z ${nf_mask_set[$line]:-} ]] || continue
    nf_mask_set[$line]=1
    nf_masks+=("$line")
    nf_mask_n=${#nf_masks[@]}
  done
  ((masked || !short))
}

# nf_space_re matches, in the C locale, the white space a text starts
# with, as Go's unicode.IsSpace tells it (nf_trim_space's list).
nf_space_re=$'^([\t\n\v\f\r ]|\xc2[\x85\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80)+'

# nf_trim_space TEXT sets nf_ts to TEXT without the white space around
# it, as Go's strings.TrimSpace (unicode.IsSpace): ASCII's, U+0085,
# U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
# In time linear in TEXT: a glob such as ${x%%[![:space:]]*} is tried
# from every position of a run of blanks, and each look at a variable
# copies all of it; so the head goes with one match anchored at the
# start, the tail 256 bytes at a time.
nf_trim_space() {
  local LC_ALL=C s=$1 head t
  if [[ $s == [$'\t\n\v\f\r \xc2\xe1\xe2\xe3']* && $s =~ $nf_space_re ]]; then s=${s:${#BASH_REMATCH[0]}}; fi
  # The last byte of no white space at all.
  if [[ $s != *[$'\t\n\v\f\r \x80'-$'\x8a\x9f\xa0\xa8\xa9\xaf'] ]]; then
    nf_ts=$s
    return 0
  fi
  head=$s
  while :; do
    if ((${#head} > 256)); then t=${head: -256} head=${head:0:${#head}-256}; else t=$head head=''; fi
    while :; do
      case $t in
        *[$'\t\n\v\f\r ']) t=${t%?} ;;
        *$'\xc2\x85' | *$'\xc2\xa0') t=${t%??} ;;
        *$'\xe1\x9a\x80' | *$'\xe2\x80'[$'\x80'-$'\x8a\xa8\xa9\xaf'] | *$'\xe2\x81\x9f' | *$'\xe3\x80\x80') t=${t%???} ;;
        *) break ;;
      esac
    done
    if [[ -z $head ]] || ((${#t} >= 3)); then
      nf_ts=$head$t
      return 0
    fi
    # Nothing is left, or one or two bytes that may end a character
    # begun in head: round again with the bytes before them.
    head+=$t
  done
}

# nf_lines TEXT sets nf_lines to the lines of TEXT. No here-string: older
# bash writes those to a temporary file, and a TEXT may be a secret, which
# never goes to disk. A long text is split by mapfile, through a pipe:
# cutting each line off it costs the text's length a line.
nf_lines() {
  local rest=$1 line
  nf_lines=()
  if [[ $rest != *$'\n'* ]]; then
    [[ -z $rest ]] || nf_lines=("$rest")
  elif ((${#rest} > 4096)); then
    mapfile -t nf_lines < <(printf '%s' "$rest")
  else
    while [[ -n $rest ]]; do
      if [[ $rest == *$'\n'* ]]; then line=${rest%%$'\n'*}; rest=${rest:${#line}+1}; else line=$rest; rest=''; fi
      nf_lines+=("$line")
    done
  fi
}

# nf_sync_mask_set makes nf_mask_set the set of nf_masks' values, if it is
# not (a caller that set nf_masks itself): nf_mask_n is the number of
# values it holds.
nf_sync_mask_set() {
  local v
  [[ ${nf_mask_n:-} != "${#nf_masks[@]}" ]] || return 0
  declare -gA nf_mask_set=()
  for v in "${nf_masks[@]}"; do nf_mask_set[$v]=1; done
  nf_mask_n=${#nf_masks[@]}
}

# nf_mask TEXT sets nf_m to TEXT with every secret replaced by ***: the
# occurrences of every secret are marked, overlapping ones too, and each
# run of marked text (occurrences that overlap or touch) becomes one ***,
# so that no part of any secret shows, as with nixflow run.
nf_mask() {
  nf_m=$1
  local v hit=0
  for v in "${nf_masks[@]}"; do
    if [[ $nf_m == *"$v"* ]]; then hit=1 && break; fi
  done
  ((hit)) || return 0
  local text=$1 pre rest i j off start=-1 end=-1 out=''
  local -a cov=()
  for v in "${nf_masks[@]}"; do
    off=0 rest=$text
    while [[ $rest == *"$v"* ]]; do
      pre=${rest%%"$v"*}
      i=$((off + ${#pre}))
      for ((j = i; j < i + ${#v}; j++)); do cov[j]=1; done
      off=$((i + 1))
      rest=${text:off}
    done
  done
  off=0
  for i in "${!cov[@]}"; do
    if ((i == end)); then
      end=$((i + 1))
      continue
    fi
    ((start < 0)) || out+="${text:off:start-off}***"
    ((start < 0)) || off=$end
    start=$i end=$((i + 1))
  done
  nf_m="$out${text:off:start-off}***${text:end}"
}

# nf_load_masks adds the values steps announced with ::add-mask::.
nf_load_masks() {
  local line
  [[ -f $nf_tmp/masks ]] || return 0
  while IFS='' read -r line; do
    nf_add_mask "$line" || true
  done <"$nf_tmp/masks"
}

# --- output ----------------------------------------------------------------

# nf_emit EVENT JOB STEP [FIELD=VALUE...]: one event of the run (the
# events of nixflow run: run_start, job_start, step_start, step_retry,
# step_end, job_end, run_end, output, warning), to the console (text or
# JSON lines), the --events file (all but output) and the job's log.
# Fields: stream msg result reason exit attempt attempts ms allowed.
nf_emit() {
  local ev=$1 job=$2 step=$3 kv stream='' msg='' result='' reason='' exit='' attempt=0 attempts=0 ms=0 allowed=0
  shift 3
  for kv; do
    case ${kv%%=*} in
      stream) stream=${kv#*=} ;;
      msg) msg=${kv#*=} ;;
      result) result=${kv#*=} ;;
      reason) reason=${kv#*=} ;;
      exit) exit=${kv#*=} ;;
      attempt) attempt=${kv#*=} ;;
      attempts) attempts=${kv#*=} ;;
      ms) ms=${kv#*=} ;;
      allowed) allowed=${kv#*=} ;;
    esac
  done
  if [[ $ev != output && -n $msg ]]; then nf_mask "$msg"; msg=$nf_m; fi
  if [[ -n $reason ]]; then nf_mask "$reason"; reason=$nf_m; fi
  local line=''
  if [[ $nf_format == json || (-n $nf_events && $ev != output) ]]; then
    nf_event_json
    line=$nf_j
    [[ -n $nf_events && $ev != output ]] && nf_write_event "$line"
  fi
  local text='' logprefix=''
  case $ev in
    output)
      text=$msg
      [[ $stream == stderr ]] && logprefix='(stderr) '
      ;;
    run_start)
      if [[ $nf_format == json ]]; then printf '%s\n' "$line" 2>/dev/null; return; fi
      if [[ $nf_format == simple ]]; then
        printf 'run %s started\n' "$msg" 2>/dev/null
      else
        local ts
        printf -v ts '%(%H:%M:%S)T' -1
        printf '%s run %s started (%s)\n' "$ts" "$msg" "$nf_run_id" 2>/dev/null
      fi
      return
      ;;
    run_end)
      [[ $nf_format == json ]] && printf '%s\n' "$line" 2>/dev/null
      return
      ;;
    job_start) text="job started ($msg)" ;;
    step_start)
      text="step started"
      ((attempts > 1)) && text+=", attempt $attempt/$attempts"
      ;;
    job_end | step_end)
      local word mark
      case $result in
        success) word=succeeded mark='✓ ' ;;
        failure) word=failed mark='✗ '; ((allowed)) && word='failed (allowed)' ;;
        *) word=$result mark='○ ' ;;
      esac
      text="${ev%_end} $word"
      [[ -n $reason ]] && text+=": $reason"
      if [[ $nf_format == structured ]]; then
        text=$mark$text
        if ((ms > 0)); then nf_round_ms "$ms"; text+=" ($nf_f)"; fi
      fi
      ;;
    step_retry | warning)
      text=$msg
      if [[ -z $job ]]; then
        if [[ $nf_format == json ]]; then printf '%s\n' "$line" 2>/dev/null; else printf 'warning: %s\n' "$text" 2>/dev/null; fi
        return
      fi
      ;;
  esac
  if [[ $nf_format == json ]]; then
    printf '%s\n' "$line" 2>/dev/null || nf_output_lost
  else
    local prefix=$job ts
    [[ -n $step ]] && prefix+=/$step
    if [[ $nf_format == simple ]]; then
      printf '[%s] %s\n' "$prefix" "$text" 2>/dev/null || nf_output_lost
    else
      printf -v ts '%(%H:%M:%S)T' -1
      printf '%s %s │ %s\n' "$ts" "$prefix" "$text" 2>/dev/null || nf_output_lost
    fi
  fi
  nf_now
  TZ=UTC0 printf -v ts '%(%Y-%m-%dT%H:%M:%S)T' $((nf_t / 1000))
  printf -v ts '%s.%03dZ' "$ts" $((nf_t % 1000))
  # The job's log says what happened as nixflow run's does:
  # "-- EVENT RESULT REASON MESSAGE" (nixflow logs reads both alike).
  local logline=$logprefix$text
  if [[ $ev != output ]]; then
    logline="-- $ev"
    [[ -n $result ]] && logline+=" $result"
    [[ -n $result ]] && ((allowed)) && logline+=" (allowed)"
    [[ -n $reason ]] && logline+=" $reason"
    [[ -n $msg ]] && logline+=" $msg"
  fi
  [[ -n $step ]] && logline="[$step] $logline"
  { printf '%s %s\n' "$ts" "$logline" >>"$nf_run_dir/logs/$job.log"; } 2>/dev/null ||
    nf_log_lost "$job" 2 "$ts $logline"
}

# nf_log_lost JOB FD [LINE]: writing JOB's log failed (LINE, if given, is
# the line it failed to write: written again to learn why). Said on FD as
# nixflow run says it, once per job, by whichever process finds out first
# (the scheduler's for events, a reader for its step's lines); the run
# goes on, and so do the attempts to write the log.
nf_log_lost() {
  local log=$nf_run_dir/logs/$1.log mark=$nf_tmp/log-lost.$1
  [[ -n ${nf_log_said[$1]:-} || -d $mark ]] && return 0
  nf_why=''
  if (($# > 2)); then
    nf_try nf_append "$log" "$3" && return 0
  else
    nf_try nf_append "$log" || :
    # (Opened this time: it failed a moment ago.)
    nf_why=${nf_why:-open $log: failed}
  fi
  nf_log_said[$1]=1
  # (A marker that cannot be made is no reason to say nothing.)
  mkdir -- "$mark" 2>/dev/null || [[ ! -d $mark ]] || return 0
  printf 'warning: job %s: writing its log %s failed: %s (the run goes on without it)\n' "$1" "$log" "$nf_why" >&"$2"
}

# nf_log_said[JOB] is set once this process said that JOB's log could not
# be written.
declare -gA nf_log_said=()

# nf_append FILE [LINE] appends LINE (if given) to FILE.
nf_append() {
  if (($# > 1)); then printf '%s\n' "$2" >>"$1"; else : >>"$1"; fi
}

# nf_try FUNC FILE [ARG...] runs FUNC, which writes FILE, in a subshell
# whose error messages it keeps (through a pipe: a file for them could be
# on the disk that is full); when FUNC fails, nf_why says why as nixflow
# run words a file's error: "open FILE: REASON" or "write FILE: REASON",
# the reason in English and in lower case. FUNC finds this shell's
# standard output and error as the descriptors nf_o and nf_e.
nf_try() {
  local nf_o nf_e rc op=open
  exec {nf_o}>&1 {nf_e}>&2
  nf_why=$(LC_ALL=C "$@" 2>&1 >&"$nf_o")
  rc=$?
  exec {nf_o}>&- {nf_e}>&-
  ((rc == 0)) && return 0
  # The first line is bash's word; after it may come its own about the
  # locale given back (an LC_ALL that names a locale not installed).
  nf_why=${nf_why%%$'\n'*}
  [[ -z $nf_why || $nf_why == *'write error'* ]] && op='write'
  nf_why=${nf_why##*: }
  nf_why=${nf_why:-write error}
  # bash says "No space left on device", nixflow run "no space left on device".
  nf_why="$op $2: ${nf_why,}"
  return "$rc"
}

# nf_write_event LINE appends an event to --events. A file that cannot be
# written (a full disk) is reported once, by whichever process finds out
# first, and the run goes on without it.
nf_write_event() {
  [[ -e $nf_tmp/events.failed ]] && return 0
  { printf '%s\n' "$1" >>"$nf_events"; } 2>/dev/null && return 0
  mkdir "$nf_tmp/events.failed" 2>/dev/null || return 0
  nf_try nf_append "$nf_events" "$1" && return 0
  printf 'warning: writing events to %s failed: %s (the run goes on without it)\n' "$nf_events" "$nf_why" >&2
}

# nf_event_json sets nf_j to the event of nf_emit (its locals) as one JSON
# object, its fields in the order of nixflow run's.
nf_event_json() {
  local out usec sec ts
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    sec=${EPOCHREALTIME%[.,]*} usec=${EPOCHREALTIME#*[.,]}
  else
    nf_now
    sec=$((nf_t / 1000)) usec=$(printf '%03d000' $((nf_t % 1000)))
  fi
  TZ=UTC0 printf -v ts '%(%Y-%m-%dT%H:%M:%S)T' "$sec"
  while [[ $usec == *0 ]]; do usec=${usec%0}; done
  [[ -n $usec ]] && ts+=.$usec
  nf_json_str "$nf_run_id"
  out="{\"time\":\"${ts}Z\",\"run\":$nf_j"
  if [[ -n $job ]]; then nf_json_str "$job"; out+=",\"job\":$nf_j"; fi
  if [[ -n $step ]]; then nf_json_str "$step"; out+=",\"step\":$nf_j"; fi
  out+=",\"event\":\"$ev\""
  [[ -n $stream ]] && out+=",\"stream\":\"$stream\""
  if [[ -n $msg ]]; then nf_json_str "$msg"; out+=",\"message\":$nf_j"; fi
  [[ -n $result ]] && out+=",\"result\":\"$result\""
  if [[ -n $reason ]]; then nf_json_str "$reason"; out+=",\"reason\":$nf_j"; fi
  [[ -n $exit ]] && out+=",\"exitCode\":$exit"
  ((attempt > 0)) && out+=",\"attempt\":$attempt"
  ((attempts > 0)) && out+=",\"attempts\":$attempts"
  if ((ms > 0)); then
    local nf_f
    nf_fmt_ms "$ms"
    out+=",\"duration\":\"$nf_f\""
  fi
  ((allowed)) && out+=",\"allowed\":true"
  nf_j="$out}"
}

nf_warn() {
  nf_emit warning "$1" "" msg="$2"
}

# nf_reader JOB STEP TAIL OUT ERR ENDED SEQ: one line of output per line read
# from the step's two streams (the fifos OUT and ERR), masked, ::add-mask::
# values learnt. One process reads both, so that a value announced on one
# stream is masked on the other from the next line on: before it writes a
# line, it takes what the other stream holds at that moment (all the step
# wrote there before this line) and learns the values announced in it.
# bash cannot wait for two descriptors at once: it waits on each in turn,
# a short while (nf_poll seconds, 0.01 to 0.2 as the step is busy or
# quiet), and 0.2 s on one when the other is closed. Once the file ENDED
# holds SEQ (the step has ended, what could be killed of it killed), 2 to
# 3 s of quiet end the reading, as nixflow run drains a step's pipes: what
# holds them open then (a process that escaped both the process group and
# the cookie) must not hold the job; ENDED.cut then holds SEQ too.
nf_reader() {
  # The first wait is on stdout, and long enough for the step to have
  # started (a process and bash's start-up): a step that prints on both
  # streams at once is read in its order more often (which pipe holds
  # the older bytes cannot be told once both hold some).
  local job=$1 step=$2 prefix=$1/$2 line v mfd logfd ts now s o rc q first poll=0.25
  local -a fd=() open=(1 1) eof=(0 0) buf=('' '') nl=(0 0) ring=() queue=()
  local n=0 got wait nf_err log_lost=0 quiet_end=''
  trap '' PIPE
  # The log's times in UTC (this process starts no other). Bytes, not
  # characters: no read cut short by its timeout cuts a character, text
  # is matched and cut byte by byte (as nixflow masks), and no pattern
  # goes through wide characters.
  TZ=UTC0 LC_ALL=C
  # A log that cannot be written is said once, as nixflow run says it;
  # the lines go on to the console.
  if ! { exec {logfd}>>"$nf_run_dir/logs/$job.log"; } 2>/dev/null; then
    nf_log_lost "$job" 2
    exec {logfd}>/dev/null
    log_lost=1
  fi
  # bash's word for each console line it could not write (a reader gone:
  # `| head`, a full disk) is not said, as nixflow run does not say it
  # (a redirection on each line would cost five system calls a line):
  # standard error goes to /dev/null, and what must be said goes to
  # nf_err.
  exec {nf_err}>&2 2>/dev/null
  # Values other jobs announce with ::add-mask:: are masked here from the
  # line after they were announced.
  exec {mfd}<"$nf_tmp/masks"
  # The step opens its stdout, then its stderr: the same order here.
  exec {s}<"$4"
  fd[0]=$s
  exec {s}<"$5"
  fd[1]=$s
  while ((open[0] || open[1])); do
    got=0
    for s in 0 1; do
      o=$((1 - s))
      first=1
      while ((open[s])); do
        wait=0.2
        if ((open[o])); then
          # Wait a while for the first line of a quiet round; else read
          # only what is there now, and go on to the other stream.
          if ((first && !got)); then
            wait=$poll
          else
            nf_ready "$s" || break
            wait=0.05
          fi
        fi
        first=0
        nf_readline "$s" "$wait"
        rc=$? line=$nf_l
        # Nothing, or part of a line, within the wait.
        ((rc > 128)) && break
        if ((rc != 0)); then
          open[s]=0
          [[ -n $line ]] || break
        fi
        got=1
        # Learn the values announced in everything both streams hold now
        # (all the step wrote before the other stream's next line) before
        # writing any of it.
        queue=("$s" "$line")
        [[ $line == *::add-mask::* ]] && nf_learn "$line"
        nf_drain "$s"
        nf_drain "$o"
        for ((q = 0; q < ${#queue[@]}; q += 2)); do nf_reader_line "${queue[q]}" "${queue[q + 1]}"; done
      done
    done
    if ((got)); then poll=0.01; elif [[ $poll == 0.01 ]]; then poll=0.05; else poll=0.2; fi
    if ((got)); then
      quiet_end=''
    elif nf_ended "$6" "$7"; then
      [[ -n $quiet_end ]] || quiet_end=$((SECONDS + 3))
      if ((SECONDS >= quiet_end)); then
        printf '%s\n' "$7" >"$6.cut"
        # What came of a last line, without its newline, as nixflow
        # run passes it on.
        for s in 0 1; do
          [[ -z ${buf[s]} ]] || nf_reader_line "$s" "${buf[s]}"
        done
        break
      fi
    fi
  done
  { if ((n > 0)); then printf '%s\n' "${ring[@]}" >"$3.stdout"; else : >"$3.stdout"; fi; } 2>&"$nf_err"
  : >"$3.stderr"
}

# nf_ended FILE SEQ: FILE holds SEQ (a line): the step of that spawn has
# ended (nf_await). One file a job, written over: no process to remove it.
nf_ended() {
  local v
  { IFS='' read -r v <"$1"; } 2>/dev/null && [[ $v == "$2" ]]
}

# nf_ready STREAM: for nf_reader (its locals), whether STREAM has a line,
# or bytes, to read now.
nf_ready() {
  ((nl[$1] || eof[$1])) || IFS='' read -r -t 0 -u "${fd[$1]}" _
}

# nf_readline STREAM WAIT: for nf_reader (its locals), the next line of
# STREAM in nf_l, waiting WAIT seconds at most for more bytes (block: as
# long as it takes). Status 0: a line; 1: the end of the stream (nf_l holds
# what came after the last newline); over 128: no whole line within the
# wait (what came is kept for the next call). A wait that ends while the
# line keeps coming goes on reading: a line cut there could announce a
# value the other stream's next lines hold.
nf_readline() {
  local x=$1 re=$'^([^\n]*)\n'
  nf_l=''
  while :; do
    if ((nl[x])); then
      # Bash's ${buf%%$'\n'*} and ${buf#*$'\n'} try one position after
      # another, each costing up to the whole text: fine in a read's worth
      # of lines, not for a line of megabytes (the regular expression is
      # linear).
      if ((${#buf[x]} <= 16384)); then
        nf_l=${buf[x]%%$'\n'*}
      else
        [[ ${buf[x]} =~ $re ]]
        nf_l=${BASH_REMATCH[1]}
      fi
      buf[x]=${buf[x]:${#nf_l}+1}
      [[ ${buf[x]} == *$'\n'* ]] || nl[x]=0
      return 0
    fi
    if ((eof[x])); then
      nf_l=${buf[x]}
      buf[x]=''
      return 1
    fi
    nf_fill "$x" "$2" || return 142
  done
}

# nf_fill STREAM WAIT: for nf_reader (its locals), adds to buf[STREAM]
# the bytes that come within WAIT seconds (block: up to the next newline,
# as long as it takes), nl[STREAM] set if they hold a newline; status 1
# when none came. No read with a timeout here reads up to a newline:
# bash's `read -t` consumes the newline and then reports the timeout when
# its time runs out between the two, joining two lines. `read -N 1` and
# `read -d ''` keep every byte they consumed.
nf_fill() {
  local x=$1 c more gather=0.005
  if [[ $2 == block ]]; then
    if IFS='' read -r -u "${fd[x]}" more; then
      buf[x]+=$more$'\n'
      nl[x]=1
    else
      buf[x]+=$more
      eof[x]=1
    fi
    return 0
  fi
  # The first byte, as soon as it comes; then what comes within 5 ms, or
  # 50 ms in a long line (fewer copies of what it holds already).
  IFS='' read -r -N 1 -t "$2" -u "${fd[x]}" c
  case $? in
    0) ;;
    1) eof[x]=1 ;;
    *) [[ -n $c ]] || return 1 ;;
  esac
  if ((!eof[x])); then
    ((${#buf[x]} < 4096)) || gather=0.05
    IFS='' read -r -d '' -t "$gather" -u "${fd[x]}" more
    (($? == 1)) && eof[x]=1
    c+=$more
  fi
  buf[x]+=$c
  [[ $c == *$'\n'* ]] && nl[x]=1
  return 0
}

# nf_drain STREAM: for nf_reader (its locals), the complete lines STREAM
# holds now (a thousand at most), added to queue, their announcements
# learnt.
nf_drain() {
  local x=$1 v rc c=0
  while ((open[x] && c < 1000)) && nf_ready "$x"; do
    c=$((c + 1))
    nf_readline "$x" 0.05
    rc=$? v=$nf_l
    ((rc > 128)) && break
    if ((rc != 0)); then
      open[x]=0
      [[ -n $v ]] || break
    fi
    [[ $v == *::add-mask::* ]] && nf_learn "$v"
    queue+=("$x" "$v")
  done
}

# nf_learn LINE: a value LINE announces with ::add-mask:: is masked from
# now on (nf_reader_line says so, and tells other jobs, when it writes the
# line).
nf_learn() {
  local nf_v
  nf_announcement "$1" && [[ -n $nf_v ]] && nf_add_mask "$nf_v"
  return 0
}

# nf_announcement LINE: LINE announces a value with ::add-mask::, which
# it sets nf_v to (white space around it removed; empty for none).
nf_announcement() {
  [[ $1 == *::add-mask::* ]] || return 1
  local nf_ts
  nf_trim_space "$1"
  [[ $nf_ts == ::add-mask::* ]] || return 1
  nf_trim_space "${nf_ts:12}"
  nf_v=$nf_ts
}

# nf_announce VALUE JOB: VALUE, announced with ::add-mask:: by a step or
# the condition of JOB, is masked from now on, here and in the other jobs
# (which read $nf_tmp/masks).
nf_announce() {
  if ! nf_add_mask "$1"; then
    nf_warn "" "the value announced with ::add-mask:: is shorter than 4 characters and is not masked"
  fi
  # One that cannot be shared is said, loudly (the other jobs' output
  # would show it).
  if ! { printf '%s\n' "$1" >>"$nf_tmp/masks"; } 2>/dev/null; then
    printf 'warning: job %s: a value announced with ::add-mask:: could not be shared with the other jobs (%s): their output may show it\n' "$2" "$nf_tmp/masks" >&"$nf_err"
  fi
}

# nf_reader_line STREAM LINE writes one line of a step's output (STREAM 0
# stdout, 1 stderr), for nf_reader (its locals).
nf_reader_line() {
  local line=$2 text v nf_v logprefix=''
  ((${1} == 1)) && logprefix='(stderr) '
  while IFS='' read -r -u "$mfd" v; do nf_add_mask "$v" || true; done
  [[ $line == *$'\r' ]] && line=${line%$'\r'}
  if nf_announcement "$line"; then
    [[ -z $nf_v ]] || nf_announce "$nf_v" "$job"
    text='::add-mask::***'
  elif ((${#nf_masks[@]} > 0)); then
    nf_mask "$line"
    text=$nf_m
  else
    text=$line
  fi
  case $nf_format in
    simple) printf '[%s] %s\n' "$prefix" "$text" || nf_output_lost ;;
    json)
      local ev=output msg=$text result='' reason='' exit='' attempt=0 attempts=0 ms=0 allowed=0
      local stream=stdout
      ((${1} == 1)) && stream=stderr
      nf_event_json
      printf '%s\n' "$nf_j" || nf_output_lost
      ;;
    *)
      printf -v ts '%(%H:%M:%S)T' -1
      printf '%s %s │ %s\n' "$ts" "$prefix" "$text" || nf_output_lost
      ;;
  esac
  # Milliseconds, as nixflow run's job logs have them.
  nf_now
  printf -v ts '%(%Y-%m-%dT%H:%M:%S)T.%03dZ [%s] %s%s' $((nf_t / 1000)) $((nf_t % 1000)) "$step" "$logprefix" "$text"
  if ! printf '%s\n' "$ts" >&"$logfd" && ((!log_lost)); then
    log_lost=1
    nf_log_lost "$job" "$nf_err" "$ts"
  fi
  # The last lines, for the summary of a failed step.
  now=${EPOCHREALTIME:-$n}
  ring[n % 20]="${now/[.,]/}"$'\t'"$text"
  n=$((n + 1))
}

# nf_json_str TEXT sets nf_j to TEXT as a JSON string, escaped as Go's
# encoding/json escapes it.
nf_json_str() {
  local s=$1 c out='' i
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  s=${s//</\\u003c}
  s=${s//>/\\u003e}
  s=${s//&/\\u0026}
  # Bytes that are not UTF-8 become \ufffd, as Go's encoding/json writes
  # them: the line stays valid JSON.
  if LC_ALL=C nf_has_high "$s"; then
    nf_utf8_fix "$s" '\ufffd'
    s=${nf_u//$'\xe2\x80\xa8'/\\u2028}
    s=${s//$'\xe2\x80\xa9'/\\u2029}
  fi
  if [[ $s == *[$'\001'-$'\037']* ]]; then
    for ((i = 0; i < ${#s}; i++)); do
      c=${s:i:1}
      if [[ $c == [$'\001'-$'\037'] ]]; then
        printf -v c '\\u%04x' "'$c"
      fi
      out+=$c
    done
    s=$out
  fi
  nf_j="\"$s\""
}

# nf_has_high TEXT: TEXT holds a byte over 127 (call it with LC_ALL=C).
nf_has_high() {
  [[ $1 == *[$'\x80'-$'\xff']* ]]
}

# nf_utf8_fix TEXT REPL sets nf_u to TEXT with REPL for every byte that is
# not part of a UTF-8 character, as Go's encoders replace them (one per
# byte; surrogates and overlong forms are not UTF-8). It matches bytes in
# the C locale: in a UTF-8 one, bash matches a string that holds one such
# byte byte by byte, and would take the characters around it apart.
nf_utf8_fix() {
  local LC_ALL=C rest=$1 out=''
  local c=$'([\x01-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf][\x80-\xbf]|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf][\x80-\xbf]|[\xf1-\xf3][\x80-\xbf][\x80-\xbf][\x80-\xbf]|\xf4[\x80-\x8f][\x80-\xbf][\x80-\xbf])'
  if [[ $rest =~ ^$c*$ ]]; then
    nf_u=$rest
    return 0
  fi
  # A long line (binary output, most likely): every byte over 127 is
  # REPL, valid characters too. Looking at it a byte at a time would cost
  # bash the square of its length.
  if ((${#rest} > 4096)); then
    local r=${2//\\/\\\\}
    r=${r//&/\\&} r=${r//\//\\/}
    local high=$'[\x80-\xff]'
    nf_u=$(printf '%s' "$rest" | LC_ALL=C sed "s/$high/$r/g"; printf x)
    nf_u=${nf_u%x}
    return 0
  fi
  # Through a window of 256 bytes at a time: a window's valid run is
  # taken whole (it stops before a character the window cuts), a bad byte
  # becomes REPL.
  local i=0 n=${#rest} w
  while ((i < n)); do
    w=${rest:i:256}
    if [[ $w =~ ^$c+ ]]; then
      out+=${BASH_REMATCH[0]}
      i=$((i + ${#BASH_REMATCH[0]}))
    else
      out+=$2
      i=$((i + 1))
    fi
  done
  nf_u=$out
}

# nf_json_time MS sets nf_j to the time (milliseconds since the epoch) as
# an RFC 3339 JSON string, in UTC.
nf_json_time() {
  local ts frac=$(($1 % 1000))
  TZ=UTC0 printf -v ts '%(%Y-%m-%dT%H:%M:%S)T' $(($1 / 1000))
  if ((frac > 0)); then
    printf -v frac '%03d' "$frac"
    while [[ $frac == *0 ]]; do frac=${frac%0}; done
    ts+=.$frac
  fi
  nf_j="\"${ts}Z\""
}

# nf_result_steps I appends to out the steps of job I, as result.json has
# them, from the records its steps left (see nf_step_record).
nf_result_steps() {
  local -a st
  local k sep=''
  nf_job_steps "$1"
  ((${#st[@]} > 0)) || return 0
  out+=',"steps":['
  for ((k = 0; k + 7 < ${#st[@]}; k += 8)); do
    nf_json_str "${st[k + 1]}"
    out+="$sep{\"step\":$nf_j,\"status\":\"${st[k + 2]}\""
    sep=,
    ((st[k + 3])) && out+=',"allowed":true'
    if [[ -n ${st[k + 7]} ]]; then
      nf_mask "${st[k + 7]}"
      nf_json_str "$nf_m"
      out+=",\"reason\":$nf_j"
    fi
    ((st[k + 5] > 0)) && out+=",\"attempts\":${st[k + 5]}"
    nf_fmt_ms "${st[k + 4]}"
    out+=",\"exitCode\":${st[k + 6]},\"duration\":\"$nf_f\""
    # A failed step's last lines, as the summary shows them (nixflow
    # report reads them).
    if [[ ${st[k + 2]} == failure && -f $nf_state/$1.tail.${st[k]} ]]; then
      local line tail='' tsep=''
      while IFS='' read -r line; do
        nf_mask "$line"
        nf_json_str "$nf_m"
        tail+=$tsep$nf_j tsep=,
      done <"$nf_state/$1.tail.${st[k]}"
      [[ -z $tail ]] || out+=",\"tail\":[$tail]"
    fi
    out+='}'
  done
  out+=']'
}

# nf_write_result writes result.json in the run directory, as nixflow run
# does, so that `nixflow runs` and `nixflow logs` read the script's runs.
nf_write_result() {
  local i out first=1 cancelled=false nf_f
  nf_load_masks
  nf_load_steps
  [[ -e $nf_state/cancelled ]] && cancelled=true
  nf_json_str "$nf_run_id"
  out="{\"run\":$nf_j"
  nf_json_str "$nf_name"
  out+=",\"name\":$nf_j"
  # Said only when true, as nixflow run says it.
  [[ $cancelled == true ]] && out+=',"cancelled":true'
  nf_json_time "$nf_run_start"
  nf_fmt_ms "$1"
  out+=",\"started\":$nf_j,\"duration\":\"$nf_f\",\"jobs\":["
  for i in "${!nf_jobs[@]}"; do
    ((first)) || out+=,
    first=0
    nf_json_str "${nf_jobs[i]}"
    out+="{\"job\":$nf_j,\"status\":\"${nf_res_status[i]}\""
    ((nf_res_allowed[i])) && out+=",\"allowed\":true"
    if [[ -n ${nf_res_reason[i]} ]]; then
      nf_mask "${nf_res_reason[i]}"
      nf_json_str "$nf_m"
      out+=",\"reason\":$nf_j"
    fi
    [[ -n ${nf_res_domain[i]} ]] && out+=",\"domain\":\"${nf_res_domain[i]}\""
    if ((${nf_res_start[i]:-0} > 0)); then
      nf_json_time "${nf_res_start[i]}"
      out+=",\"where\":\"local\",\"started\":$nf_j"
    else
      out+=",\"started\":\"0001-01-01T00:00:00Z\""
    fi
    nf_fmt_ms "${nf_res_ms[i]}"
    out+=",\"duration\":\"$nf_f\""
    nf_result_steps "$i"
    out+="}"
  done
  out+="]"
  if ((${#nf_errors[@]} > 0)); then
    local IFS=$'\n'
    nf_mask "${nf_errors[*]}"
    unset IFS
    nf_json_str "$nf_m"
    out+=",\"error\":$nf_j,\"domain\":\"environment\""
  fi
  # Whole or not at all, as nixflow run writes it: a temporary file,
  # renamed (a full disk leaves no half a result).
  local err='' f=$nf_run_dir/result.json
  if [[ -d $f ]]; then
    err='Is a directory'
  elif ! err=$({ printf '%s}\n' "$out" >"$f.tmp" && mv -f -- "$f.tmp" "$f"; } 2>&1); then
    rm -f -- "$f.tmp"
    err=${err##*: }
    err=${err:-write error}
  else
    err=''
  fi
  # As nixflow run says it: the run happened, its record is lost.
  [[ -z $err ]] || printf 'warning: the run'"'"'s result was not recorded: %s\n' "$err" >&2
}

# --- env files ---------------------------------------------------------------

# nf_valid_name NAME: a variable name. The ranges are ASCII's whatever
# the host's locale: in a Turkish one, [A-Za-z] holds neither I nor i.
nf_valid_name() {
  local LC_ALL=C
  [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]
}

# nf_parse_envfile DATA [LINES]: the JOB_ENV grammar (KEY=VALUE, KEY<<DELIM
# ... DELIM), parsed, never sourced. Sets nf_pk (keys in order) and nf_pv
# (values), or nf_err. Lines are numbered after LINES, the lines of the
# file before DATA.
nf_parse_envfile() {
  local line key value delim start n=${2:-0} closed l i=0
  nf_pk=() nf_pv=() nf_err=''
  local -A have=()
  # The lines, split once: cutting each off the text (${rest#*$'\n'})
  # costs the square of a long line's length, and a copy of the rest of
  # the text a line (nf_lines: no here-string, the text may hold secrets).
  local -a lines=()
  nf_lines "$1"
  lines=("${nf_lines[@]}")
  while ((i < ${#lines[@]})); do
    line=${lines[i]}
    i=$((i + 1))
    n=$((n + 1))
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*$ ]] && continue
    # `export KEY=VALUE`, as a step written to be sourced appends: the
    # same as KEY=VALUE.
    if [[ $line == 'export '* ]]; then
      line=${line#export }
      line=${line#"${line%%[! ]*}"}
    fi
    local eqs=${line%%=*} hds=${line%%<<*}
    local eq=-1 hd=-1
    [[ $eqs != "$line" ]] && eq=${#eqs}
    [[ $hds != "$line" ]] && hd=${#hds}
    if ((hd > 0 && (eq < 0 || hd < eq))); then
      key=${line:0:hd} delim=${line:hd+2}
      # Errors name the line, and the variable when it is a name: never
      # other text, which may be a value.
      if ! nf_valid_name "$key"; then
        nf_err="line $n: invalid variable name before <<"
        return 1
      fi
      if [[ -z $delim ]]; then
        nf_err="line $n: $key<< has an empty delimiter"
        return 1
      fi
      start=$n closed=0 value=''
      local -a vl=()
      while ((i < ${#lines[@]})); do
        l=${lines[i]}
        i=$((i + 1))
        n=$((n + 1))
        l=${l%$'\r'}
        if [[ $l == "$delim" ]]; then closed=1; break; fi
        vl+=("$l")
      done
      if ((!closed)); then
        nf_err="line $start: value of $key is not closed by its delimiter line"
        return 1
      fi
      local IFS=$'\n'
      value="${vl[*]}"
      unset IFS
    elif ((eq > 0)); then
      key=${line:0:eq} value=${line:eq+1}
    else
      nf_err="line $n: expected KEY=VALUE or KEY<<DELIMITER"
      return 1
    fi
    if ! nf_valid_name "$key"; then
      nf_err="line $n: invalid variable name before ="
      return 1
    fi
    if [[ -z ${have[$key]:-} ]]; then
      nf_pk+=("$key")
      have[$key]=1
    fi
    nf_pv[$key]=$value
  done
  return 0
}

# nf_has_nul FILE succeeds, with nf_err naming the line, where FILE holds
# a NUL byte: no environment variable can carry one (and bash cannot
# hold one: read stops there, and succeeds only then).
nf_has_nul() {
  local d nl
  IFS='' read -r -d '' d <"$1" 2>/dev/null || return 1
  nl=${d//[!$'\n']/}
  nf_err="line $((${#nl} + 1)) holds a NUL byte, which no environment variable can carry"
}

# nf_dotenv DATA: dotenv text as nixflow run reads it (godotenv 1.5.1's
# grammar: comments, export, KEY=VALUE and KEY: VALUE, single quotes
# verbatim, double quotes with \n and \r escapes, multi-line quoted values,
# ${VAR} and $VAR of earlier keys in unquoted and double-quoted values).
# Sets nf_pk and nf_pv, or nf_err (which line, never the text).
nf_dotenv() {
  if nf_dotenv_parse "$1"; then
    nf_dotenv_names "$1"
    return
  fi
  # As nixflow run does: the first line that does not parse on its own,
  # with its newline.
  local -a lines=()
  nf_lines "$1"
  lines=("${nf_lines[@]}")
  local i last=$((${#lines[@]} - 1))
  for ((i = 0; i <= last; i++)); do
    if ((i < last)) || [[ $1 == *$'\n' ]]; then
      nf_dotenv_parse "${lines[i]}"$'\n'
    else
      nf_dotenv_parse "${lines[i]}"
    fi || {
      nf_err="not KEY=VALUE lines (dotenv syntax), near line $((i + 1))"
      return 1
    }
  done
  nf_err="not KEY=VALUE lines (dotenv syntax)"
  return 1
}

# nf_dotenv_names DATA refuses keys of nf_pk that are no variable name
# ("a.b", "1X", "KEY SP"), naming the first and its line, as nixflow run
# does.
nf_dotenv_names() {
  local LC_ALL=C
  local k line n=0 badkeys=()
  for k in "${nf_pk[@]}"; do nf_valid_name "$k" || badkeys+=("$k"); done
  ((${#badkeys[@]})) || return 0
  local -A isbad=()
  for k in "${badkeys[@]}"; do isbad[$k]=1; done
  local -a lines=()
  nf_lines "$1"
  lines=("${nf_lines[@]}")
  for line in "${lines[@]}"; do
    n=$((n + 1))
    [[ $line =~ ^[[:blank:]]*(export[[:blank:]]+)?([A-Za-z0-9_.[:blank:]]*)[=:] ]] || continue
    k=${BASH_REMATCH[2]}
    k=${k%"${k##*[![:blank:]]}"}
    [[ -n $k && -n ${isbad[$k]:-} ]] || continue
    nf_goquote "$k"
    nf_err="line $n: key $nf_q is not a valid variable name (letters, digits and _, not starting with a digit)"
    return 1
  done
  k=$(printf '%s\n' "${badkeys[@]}" | LC_ALL=C sort | head -n 1)
  nf_goquote "$k"
  nf_err="key $nf_q is not a valid variable name (letters, digits and _, not starting with a digit)"
  return 1
}

# nf_dotenv_parse DATA: godotenv's parser. The text is split into lines
# once and read a line at a time (cur is what is left of the current
# one): cutting each statement off the whole text costs its length per
# statement, which made a 2,000-line file take 9 s. Text is cut after a
# match by its offset, never with ${x#*y}, which bash tries against
# every prefix: the square of the distance to y (7 s for a 200 KB value).
nf_dotenv_parse() {
  local LC_ALL=C
  # godotenv's blanks (isSpace): not the newline, and U+0085 and U+00A0
  # (nb, nl: two bytes each, so not in sp's brackets).
  local sp=$' \t\v\f\r' nb=$'\xc2\xa0' nl=$'\xc2\x85'
  # Before a statement, any Unicode space (unicode.IsSpace): nf_space_re.
  # A key's characters, as godotenv tells them a byte at a time: ASCII
  # letters, digits, _ and ., the blanks, and the bytes that are a
  # letter, a digit or a blank in Latin-1 (so "KEY\u00a0" is a key, and
  # "µ" a name nixflow refuses).
  local keyre="^([A-Za-z0-9_.$sp"$'\x85\xa0\xaa\xb2\xb3\xb5\xb9\xba\xbc-\xbe\xc0-\xd6\xd8-\xf6\xf8-\xff'"]*)[=:]"
  # Blanks are cut with one match each, anchored at the start: a glob
  # such as ${x%%[!...]*}, or a match anchored at the end only, is tried
  # from every position of a run of blanks (40,000 of them took 20 s).
  # blre: the blanks a text starts with; rre: a text up to its last
  # character that is no blank (a byte that is no blank nor \xc2, or a
  # \xa0 or \x85 that is not the end of U+00A0 or U+0085).
  local blre="^([$sp]|$nb|$nl)+"
  local rre="^(.*[^$sp"$'\xa0\x85\xc2'"]|.*[^"$'\xc2'"]["$'\xa0\x85'"]|["$'\xa0\x85'"])"
  local key value q acc rest pre last cur n li=1 t cut at
  local -a lines=()
  nf_pk=() nf_pv=() nf_err=''
  local -A have=()
  # CRLF is a newline (a lone CR ends an unquoted value). nf_lines: no
  # here-string, the text may hold secrets.
  nf_lines "${1//$'\r\n'/$'\n'}"
  lines=("${nf_lines[@]}")
  n=${#lines[@]} cur=${lines[0]-}
  while :; do
    # The start of the next statement: past blanks, blank lines and
    # comments (to the end of their line).
    while :; do
      [[ $cur == [$' \t\n\v\f\r\xc2\xe1\xe2\xe3']* && $cur =~ $nf_space_re ]] && cur=${cur:${#BASH_REMATCH[0]}}
      [[ $cur == '#'* ]] && cur=''
      [[ -z $cur ]] || break
      ((li < n)) || return 0
      cur=${lines[li]} li=$((li + 1))
    done
    if [[ $cur == export["$sp"]* || $cur == export"$nb"* || $cur == export"$nl"* ]]; then
      cur=${cur#export}
      nf_dotenv_ltrim
    fi
    # The key: letters, digits, _, . and blanks, up to = or :. Anything
    # else, or no = or : on the line, is a mistake; so is an empty key
    # (godotenv reads a value without a key: nixflow run refuses it).
    [[ $cur =~ $keyre ]] || { nf_err=syntax; return 1; }
    key=${BASH_REMATCH[1]}
    cur=${cur:${#BASH_REMATCH[0]}}
    if [[ $key == *[$sp$'\xa0\x85'] ]]; then
      if [[ $key =~ $rre ]]; then key=${BASH_REMATCH[0]}; else key=''; fi
    fi
    [[ -n $key ]] || { nf_err=syntax; return 1; }
    nf_dotenv_ltrim
    q=${cur:0:1}
    if [[ $q == "'" || $q == '"' ]]; then
      # The value ends at the first quote not preceded by a backslash,
      # on this line or a later one.
      acc=$q rest=${cur:1}
      while :; do
        if [[ $rest == *"$q"* ]]; then
          pre=${rest%%"$q"*}
          if [[ -n $pre ]]; then last=${pre: -1}; else last=${acc: -1}; fi
          acc+=$pre rest=${rest:${#pre}+1}
          [[ $last == \\ ]] || break
          acc+=$q
        elif ((li < n)); then
          acc+=$rest$'\n' rest=${lines[li]} li=$((li + 1))
        else
          nf_err=syntax
          return 1
        fi
      done
      cur=$rest value=$acc
      while [[ $value == "$q"* ]]; do value=${value#"$q"}; done
      while [[ $value == *"$q" ]]; do value=${value%"$q"}; done
      if [[ $q == '"' ]]; then
        nf_dotenv_escapes "$value"
        nf_dotenv_expand "$nf_x"
        value=$nf_x
      fi
    else
      # The value runs to the end of the line, or to a CR.
      if [[ $cur == *$'\r'* ]]; then
        value=${cur%%$'\r'*}
        cur=${cur:${#value}+1}
      else
        value=$cur cur=''
      fi
      # An inline comment starts at the last blank and #: the # latest
      # in the value (at) of the three kinds of blank.
      cut=$value at=-1
      if [[ $value == *#* ]]; then
        t=${value%["$sp"]#*}
        [[ $t == "$value" ]] || { cut=$t at=$((${#t} + 1)); }
        for pre in "$nb" "$nl"; do
          t=${value%"$pre#"*}
          if [[ $t != "$value" ]] && ((${#t} + 2 > at)); then cut=$t at=$((${#t} + 2)); fi
        done
      fi
      value=$cut
      [[ $value == [$sp$'\xc2']* && $value =~ $blre ]] && value=${value:${#BASH_REMATCH[0]}}
      if [[ $value == *[$sp$'\xa0\x85'] ]]; then
        if [[ $value =~ $rre ]]; then value=${BASH_REMATCH[0]}; else value=''; fi
      fi
      nf_dotenv_expand "$value"
      value=$nf_x
    fi
    if [[ -z ${have[$key]:-} ]]; then
      nf_pk+=("$key")
      have[$key]=1
    fi
    nf_pv[$key]=$value
  done
}

# nf_dotenv_ltrim: nf_dotenv_parse's cur without the blanks it starts
# with (isSpace's, U+0085 and U+00A0 among them).
nf_dotenv_ltrim() {
  if [[ $cur == [$sp$'\xc2']* && $cur =~ $blre ]]; then
    cur=${cur:${#BASH_REMATCH[0]}}
  fi
}

# nf_dotenv_escapes TEXT: \n and \r become the characters, \$ stays, and
# a backslash before any other character goes (godotenv's two passes, in
# one).
nf_dotenv_escapes() {
  local s=$1 out='' pre c
  while [[ $s == *\\?* ]]; do
    pre=${s%%\\*}
    c=${s:${#pre}+1:1}
    s=${s:${#pre}+2}
    out+=$pre
    case $c in
      n) out+=$'\n' ;;
      r) out+=$'\r' ;;
      '$') out+='\$' ;;
      *) out+=$c ;;
    esac
  done
  nf_x=$out$s
}

# nf_dotenv_expand TEXT: ${VAR} and $VAR (upper-case names) from the keys
# read so far, as godotenv expands them: \$ stays a $, unknown names give
# nothing, and nothing comes from the environment.
nf_dotenv_expand() {
  local LC_ALL=C
  local s=$1 out='' pre m name
  while [[ $s == *'$'* ]]; do
    pre=${s%%'$'*}
    s=${s:${#pre}+1}
    [[ $s =~ ^(\()?(\{)?([A-Z0-9_]+)?(\})? ]]
    m=${BASH_REMATCH[0]} name=${BASH_REMATCH[3]}
    s=${s:${#m}}
    if [[ $pre == *\\ ]]; then
      out+=${pre%\\}\$$m
    elif [[ -n $name ]]; then
      out+=$pre${nf_pv[$name]-}
    else
      out+=$pre\$$m
    fi
  done
  nf_x=$out$s
}

# --- providers -------------------------------------------------------------

# nf_provider INDEX TYPE SECRET ARGS...: run one provider of the current
# layer (nf_where), adding its values to nf_layer and, when SECRET is 1,
# its values to nf_secrets and its names (a required provider's too) to
# nf_names: names whose final value, whichever layer gives it, is masked.
nf_provider() {
  local index=$1 type=$2 secret=$3 path file data rc err k
  local -A nf_pv=()
  local -a nf_pk=()
  shift 3
  local what=$type
  case $type in
    static)
      while (($# >= 2)); do nf_layer[$1]=$2; shift 2; done
      return 0
      ;;
    required)
      nf_required+=("$@")
      ((secret)) && nf_names+=("$@")
      return 0
      ;;
    file | sops)
      path=$1
      nf_goquote "$path"
      what="$type $nf_q"
      file=$path
      [[ $file == \~/* ]] && file=$HOME/${file#\~/}
      [[ $file == /* ]] || file=$nf_repo/$file
      if [[ ! -e $file ]]; then
        if (($2)); then
          nf_provider_error "$index" "$what" "open $file: no such file or directory"
          return 1
        fi
        return 0
      fi
      if [[ $type == file ]]; then
        if nf_has_nul "$file"; then
          nf_provider_error "$index" "$what" "$nf_err"
          return 1
        fi
        if ! data=$(cat -- "$file" 2>&1; printf x); then
          nf_provider_error "$index" "$what" "open $file: permission denied"
          return 1
        fi
        data=${data%x}
      else
        nf_sops "$file" "${3:-yaml}" || { nf_provider_error "$index" "$what" "$nf_err"; return 1; }
        data=$nf_x
      fi
      ;;
    command)
      local cmd=$1
      ((${#cmd} > 40)) && cmd=${cmd:0:37}...
      nf_goquote "$cmd"
      what="command $nf_q"
      err=$nf_tmp/provider.err
      nf_run_provider "$1" "$nf_tmp/provider.out" "$err" || return 1
      rc=$nf_rc
      local nul=0
      IFS='' read -r -d '' data <"$nf_tmp/provider.out" || true
      nf_has_nul "$nf_tmp/provider.out" && nul=1
      rm -f "$nf_tmp/provider.out"
      if ((rc != 0)); then
        local last=''
        [[ -s $err ]] && last=$(sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$err" | sed -n '$p')
        rm -f "$err"
        nf_provider_error "$index" "$what" "exited with status $rc${last:+: $last}"
        return 1
      fi
      rm -f "$err"
      if ((nul)); then
        nf_provider_error "$index" "$what" "its output: $nf_err"
        return 1
      fi
      ;;
  esac
  if [[ $type == sops ]]; then
    nf_pk=() nf_pv=()
    nf_parse_sops "$data" || { nf_provider_error "$index" "$what" "$nf_err"; return 1; }
  elif ! nf_dotenv "$data"; then
    [[ $type == command ]] && nf_err="its output: $nf_err"
    nf_provider_error "$index" "$what" "$nf_err"
    return 1
  fi
  for k in "${nf_pk[@]}"; do
    nf_layer[$k]=${nf_pv[$k]}
    ((secret)) || continue
    nf_secrets[$k]=${nf_pv[$k]}
    nf_names+=("$k")
  done
}

# nf_run_provider COMMAND OUT ERR runs a command provider here, as a step
# runs: in a process group of its own, its output to files (a process it
# leaves behind cannot hold a pipe open), nothing of it surviving it (the
# processes that left its group with setsid too, found by a cookie), and
# stopped by the first Ctrl-C. Sets nf_rc; returns 1 when the run was
# cancelled.
nf_run_provider() {
  local pid rc stopper='' cookie=$nf_run_id.provider.$BASHPID
  set -m
  (
    trap - PIPE USR1 USR2 INT HUP QUIT TERM
    nf_close_fds
    cd -- "$nf_repo" || exit 1
    nf_exec_clean "NIXFLOW_COOKIE=$cookie" -- "${nf_sigreset[@]}" bash --noprofile --norc -c "$1"
  ) </dev/null >"$2" 2>"$3" &
  pid=$!
  set +m
  while :; do
    wait "$pid" 2>/dev/null
    rc=$?
    kill -0 "$pid" 2>/dev/null || break
    if [[ -z $stopper && -e $nf_state/cancelled ]]; then
      nf_stopper "$pid" INT &
      stopper=$!
    fi
  done
  kill -KILL -- "-$pid" 2>/dev/null
  [[ -n $stopper ]] && kill -KILL "$stopper" 2>/dev/null && wait "$stopper" 2>/dev/null
  nf_kill_cookie "$cookie" "$pid"
  nf_rc=$rc
  if [[ -e $nf_state/cancelled ]]; then
    rm -f "$2" "$3"
    return 1
  fi
  return 0
}

nf_provider_error() {
  nf_errors+=("$nf_where envFrom[$1] ($2): $3")
}

# nf_sops FILE FORMAT decrypts a sops file into KEY=VALUE lines (nested keys
# joined with _) in nf_x, through sops' own dotenv or json output.
nf_sops() {
  local err=$nf_tmp/sops.err
  if ! command -v sops >/dev/null 2>&1; then
    nf_err="the sops binary is not on PATH"
    return 1
  fi
  local rc=0
  nf_x=$(sops --decrypt --input-type "$2" --output-type json "$1" 2>"$err") || rc=$?
  if ((rc != 0)); then
    # sops' whole message (20 lines at most), indented under the error.
    local msg='' line n=0 text
    IFS='' read -r -d '' text <"$err" || true
    rm -f "$err"
    text=${text#"${text%%[![:space:]]*}"}
    text=${text%"${text##*[![:space:]]}"}
    nf_err="sops --decrypt: exit status $rc"
    if [[ -n $text ]]; then
      while IFS='' read -r line; do
        n=$((n + 1))
        if ((n > 20)); then msg+=$'\n  ...'; break; fi
        msg+=${msg:+$'\n  '}$line
      done <<<"$text"
      nf_err+=": $msg"
    fi
    if [[ $text == *"Failed to get the data key"* ]]; then
      nf_err+=$'\n  hint: sops found no key that decrypts this file: with age, set SOPS_AGE_KEY_FILE to the key file'
      nf_err+=" (or SOPS_AGE_KEY to the key), in nixflow's environment; see docs/secrets.md"
    fi
    return 1
  fi
  rm -f "$err"
  if [[ $2 == ini ]]; then nf_sops_ini=1; else nf_sops_ini=0; fi
}

# nf_parse_sops JSON flattens sops' JSON output into nf_pk/nf_pv: nested
# keys joined with '_', list items by index, ini's DEFAULT section at the
# top. A small JSON reader: sops writes plain, well-formed JSON, indented.
# It reads bytes (C locale), a line at a time: nf_jc is what is left of
# the current line, nf_jl the lines, nf_ji the next one's index. Each
# look at a variable costs a copy of all of it, so a reader of the whole
# text (or of all its rest) took minutes for a file of 2,000 keys.
nf_parse_sops() {
  local LC_ALL=C
  nf_jl=() nf_ji=0 nf_jc='' nf_err=''
  # No here-string: older bash writes those to a temporary file, and the
  # text is secrets.
  mapfile -t nf_jl < <(printf '%s\n' "$1")
  nf_json_ws
  nf_json_value "" || return 1
  return 0
}

# nf_json_ws skips white space, to the next line if need be.
nf_json_ws() {
  while :; do
    nf_jc=${nf_jc#"${nf_jc%%[![:space:]]*}"}
    [[ -z $nf_jc ]] && ((nf_ji < ${#nf_jl[@]})) || return 0
    nf_jc=${nf_jl[nf_ji]}
    nf_ji=$((nf_ji + 1))
  done
}

# nf_json_value PREFIX reads one value.
nf_json_value() {
  local prefix=$1 c=${nf_jc:0:1} key i
  case $c in
    '{')
      nf_jc=${nf_jc:1}
      nf_json_ws
      if [[ $nf_jc == '}'* ]]; then nf_jc=${nf_jc:1}; return 0; fi
      while :; do
        nf_json_ws
        nf_json_string || return 1
        key=$nf_js
        nf_json_ws
        nf_jc=${nf_jc:1} # :
        nf_json_ws
        if [[ -z $prefix && $key == DEFAULT && $nf_sops_ini == 1 ]]; then
          nf_json_value "" || return 1
        else
          nf_json_value "${prefix:+${prefix}_}$key" || return 1
        fi
        nf_json_ws
        c=${nf_jc:0:1}
        nf_jc=${nf_jc:1}
        [[ $c == '}' ]] && return 0
      done
      ;;
    '[')
      nf_jc=${nf_jc:1}
      nf_json_ws
      if [[ $nf_jc == ']'* ]]; then nf_jc=${nf_jc:1}; return 0; fi
      i=0
      while :; do
        nf_json_ws
        nf_json_value "${prefix:+${prefix}_}$i" || return 1
        i=$((i + 1))
        nf_json_ws
        c=${nf_jc:0:1}
        nf_jc=${nf_jc:1}
        [[ $c == ']' ]] && return 0
      done
      ;;
    '"')
      nf_json_string || return 1
      nf_json_leaf "$prefix" "$nf_js" "$nf_jnul"
      ;;
    *)
      [[ $nf_jc =~ ^(true|false|null|-?[0-9][0-9.eE+-]*) ]] || { nf_err="read the decrypted file: not JSON"; return 1; }
      nf_jc=${nf_jc:${#BASH_REMATCH[1]}}
      local v=${BASH_REMATCH[1]}
      [[ $v == null ]] && v=''
      nf_json_leaf "$prefix" "$v"
      ;;
  esac
}

nf_json_leaf() {
  if ! nf_valid_name "$1"; then
    nf_goquote "$1"
    nf_q=${nf_q//$'\xff'/\\x00}
    nf_err="key $nf_q is not a valid variable name (letters, digits and _, not starting with a digit)"
    return 1
  fi
  if [[ -n ${nf_pv[$1]+x} ]]; then
    nf_goquote "$1"
    nf_err="two keys flatten to the same variable $nf_q"
    return 1
  fi
  if ((${3:-0})); then
    nf_goquote "$1"
    nf_err="key $nf_q: its value holds a NUL byte, which no environment variable can carry"
    return 1
  fi
  nf_pk+=("$1")
  nf_pv[$1]=$2
}

# nf_json_string reads a JSON string into nf_js, and sets nf_jnul to 1
# if it holds \u0000, which bash cannot hold (nf_js has the byte \xff in
# its place), 0 if not. A string is on one line,
# and each step below is one pass over it: a loop that cuts the text at
# each escape costs its length per escape.
nf_json_string() {
  local rest t s p out='' pre cp lo
  nf_jnul=0
  [[ $nf_jc == \"* ]] || { nf_err="read the decrypted file: not JSON"; return 1; }
  rest=${nf_jc:1}
  # Its end: the first quote once \\ and \" are blanked (the first \\
  # in the text is an escaped backslash: no other escape ends in one).
  t=${rest//$'\\\\'/__}
  t=${t//'\"'/__}
  [[ $t == *\"* ]] || { nf_err="read the decrypted file: not JSON"; return 1; }
  t=${t%%\"*}
  s=${rest:0:${#t}} nf_jc=${rest:${#t}+1}
  # JSON has no control character in a string but escaped, so \x01 can
  # stand for an escaped backslash while the other escapes are replaced.
  [[ $s != *[$'\x01'-$'\x1f']* ]] || { nf_err="read the decrypted file: not JSON"; return 1; }
  p=${s//$'\\\\'/$'\x01'}
  if [[ $p == *\\* ]]; then
    p=${p//'\n'/$'\n'} p=${p//'\t'/$'\t'} p=${p//'\r'/$'\r'} p=${p//'\b'/$'\b'} p=${p//'\f'/$'\f'}
    p=${p//'\"'/\"} p=${p//'\/'/\/}
  fi
  # \u last: what it gives (a backslash, a \x01) is not looked at again.
  while [[ $p == *'\u'* ]]; do
    pre=${p%%'\u'*}
    p=${p:${#pre}+2}
    out+=${pre//$'\x01'/\\}
    [[ $p =~ ^[0-9a-fA-F]{4} ]] || { nf_err="read the decrypted file: not JSON"; return 1; }
    cp=$((16#${p:0:4}))
    p=${p:4}
    # A pair of surrogates is one character; a lone one is U+FFFD, as
    # Go's decoder reads them.
    if ((cp >= 0xD800 && cp < 0xDC00)) && [[ $p =~ ^\\u([dD][c-fC-F][0-9a-fA-F]{2}) ]]; then
      lo=$((16#${BASH_REMATCH[1]}))
      cp=$((0x10000 + ((cp - 0xD800) << 10) + lo - 0xDC00))
      p=${p:6}
    elif ((cp >= 0xD800 && cp < 0xE000)); then
      cp=0xFFFD
    fi
    if ((cp == 0)); then
      # A mark where the NUL was (no UTF-8 text holds the byte \xff): a
      # key holding one is no name, and nf_json_leaf says so as Go does.
      nf_jnul=1
      out+=$'\xff'
      continue
    fi
    nf_utf8 "$cp"
    out+=$nf_u
  done
  [[ $p != *\\* ]] || { nf_err="read the decrypted file: not JSON"; return 1; }
  nf_js=$out${p//$'\x01'/\\}
}

# nf_utf8 CODEPOINT sets nf_u to its UTF-8 bytes, whatever the locale.
nf_utf8() {
  local cp=$1 f
  if ((cp < 0x80)); then
    printf -v f '\\x%02x' "$cp"
  elif ((cp < 0x800)); then
    printf -v f '\\x%02x\\x%02x' $((0xC0 | cp >> 6)) $((0x80 | (cp & 0x3F)))
  elif ((cp < 0x10000)); then
    printf -v f '\\x%02x\\x%02x\\x%02x' $((0xE0 | cp >> 12)) $((0x80 | (cp >> 6 & 0x3F))) $((0x80 | (cp & 0x3F)))
  else
    printf -v f '\\x%02x\\x%02x\\x%02x\\x%02x' $((0xF0 | cp >> 18)) $((0x80 | (cp >> 12 & 0x3F))) $((0x80 | (cp >> 6 & 0x3F))) $((0x80 | (cp & 0x3F)))
  fi
  printf -v nf_u '%b' "$f"
}

# nf_resolve_environments runs every provider, the workflow's and each
# job's, and checks every required name, before any job starts.
nf_resolve_environments() {
  local i k ok=1 wf_ok=1 name
  local -A nf_secrets=() nf_wf_secrets=() nf_final=()
  local -a nf_required=() nf_names=() nf_wf_names=()
  local -A nf_layer=()
  nf_where=workflow
  nf_wf_providers || wf_ok=0
  nf_wf_required=("${nf_required[@]}")
  for k in "${!nf_layer[@]}"; do nf_wfprov[$k]=${nf_layer[$k]}; done
  for k in "${!nf_secrets[@]}"; do nf_wf_secrets[$k]=${nf_secrets[$k]}; done
  nf_add_secrets
  if ((wf_ok)); then
    nf_wf_names=("${nf_names[@]}")
  else
    # Go on with the jobs' providers, so that every problem is listed,
    # but not with the names the failing provider may have set.
    nf_wfprov=() nf_wf_required=()
  fi
  for i in "${!nf_jobs[@]}"; do
    nf_layer=() nf_required=() nf_secrets=() nf_names=()
    nf_where="job ${nf_jobs[i]}"
    local before=${#nf_errors[@]}
    nf_job_providers_"$i"
    # The secrets of the providers before a failing one mask its error.
    nf_add_secrets
    ((${#nf_errors[@]} > before)) && continue
    declare -gA "nf_jprov_$i=()"
    local -n nf_jp=nf_jprov_$i
    # shellcheck disable=SC2004
    for k in "${!nf_layer[@]}"; do nf_jp[$k]=${nf_layer[$k]}; done
    unset -n nf_jp
    local -A nf_env=()
    nf_job_base_env "$i"
    # A secret stays one whichever layer gives its final value (--env,
    # --env-file, this host's environment): masked by name.
    for name in "${nf_wf_names[@]}" "${nf_names[@]}"; do
      nf_secret_name[$name]=1
      [[ -n ${nf_env[$name]:-} ]] || continue
      [[ ${nf_wf_secrets[$name]+x} && ${nf_wf_secrets[$name]} == "${nf_env[$name]}" && ${#nf_env[$name]} -lt 4 ]] && continue
      nf_final[$name]=${nf_env[$name]}
    done
    ((wf_ok)) || continue
    # The required names, against the job's environment as a step sees it.
    local -a missing=()
    for name in "${nf_wf_required[@]}" "${nf_required[@]}"; do
      if [[ -z ${nf_env[$name]+x} ]] && ! printenv "$name" >/dev/null; then
        [[ " ${missing[*]} " == *" $name "* ]] || missing+=("$name")
      fi
    done
    if ((${#missing[@]} > 0)); then
      mapfile -t missing < <(printf '%s\n' "${missing[@]}" | LC_ALL=C sort)
      local IFS=,
      local list="${missing[*]}"
      unset IFS
      nf_errors+=("job ${nf_jobs[i]}: required variables not set: ${list//,/, }")
    fi
  done
  nf_secrets=()
  for k in "${!nf_final[@]}"; do
    nf_masked "${nf_final[$k]}" || nf_secrets[$k]=${nf_final[$k]}
  done
  nf_add_secrets
  # The values, in this host's environment and in the overrides, of the
  # names a secret required provider lists are secrets, whether or not
  # that provider ran or its job was compiled (--job): a provider that
  # failed may repeat them in its message, and a step inherits this
  # host's environment. A value a step exports under such a name is one
  # too. (Values too short to mask were warned about with the final ones.)
  local v
  for name in "${nf_required_secret[@]}"; do
    nf_secret_name[$name]=1
    v=$(printenv "$name") || v=''
    ((${#v} >= 4)) && ! nf_masked "$v" && { nf_add_mask "$v" || true; }
    v=${nf_over[$name]:-}
    ((${#v} >= 4)) && ! nf_masked "$v" && { nf_add_mask "$v" || true; }
  done
  ((${#nf_errors[@]} == 0)) || ok=0
  ((ok))
}

# nf_masked VALUE: VALUE is masked already: some line of it, and every
# line long enough to mask (as nf_add_mask trims them).
nf_masked() {
  local line any=0
  nf_sync_mask_set
  nf_lines "$1"
  for line in "${nf_lines[@]}"; do
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    ((${#line} >= 4)) || continue
    [[ -n ${nf_mask_set[$line]:-} ]] || return 1
    any=1
  done
  ((any))
}

# nf_add_secrets masks the values of the secret variables just read, in
# name order so that warnings come in a stable order.
nf_add_secrets() {
  local k
  # No process for a layer without secrets (most jobs have none).
  ((${#nf_secrets[@]} > 0)) || return 0
  while IFS='' read -r k; do
    [[ -n $k ]] || continue
    nf_add_mask "${nf_secrets[$k]}" || nf_warn "" "secret $k is shorter than 4 characters and is not masked"
  done < <(printf '%s\n' "${!nf_secrets[@]}" | LC_ALL=C sort)
}

# nf_set KEY VALUE sets a variable in the layer being built.
nf_set() {
  nf_env[$1]=$2
}

# nf_job_base_env JOB fills nf_env with the job's layers over the host's
# environment: workflow providers and env, job providers and env, runtime
# overrides.
nf_job_base_env() {
  local k
  for k in "${!nf_wfprov[@]}"; do nf_env[$k]=${nf_wfprov[$k]}; done
  nf_wf_env
  # shellcheck disable=SC2178
  local -n nf_jp=nf_jprov_$1
  for k in "${!nf_jp[@]}"; do nf_env[$k]=${nf_jp[$k]}; done
  unset -n nf_jp
  nf_job_env_"$1"
  nf_apply_overrides
}

nf_apply_overrides() {
  local k
  for k in "${!nf_over[@]}"; do nf_env[$k]=${nf_over[$k]}; done
}

# --- processes -------------------------------------------------------------

# nf_kill_cookie COOKIE FIRST kills every process whose environment holds
# the cookie of the step whose pid is FIRST: the ones that left its process
# group (setsid) too. It looks again while a look finds a new one (a
# process may start another as it is killed), or nf_unsure_since finds a
# process the look may have missed (one in the middle of executing a
# program, whose environment cannot be read yet: see nf_settle), for 5 s
# at most (4 to 5: SECONDS counts whole seconds); five times more when it
# finds only one whose environment is empty for now (env -i, or being set
# up). Then it waits, 2 s at most, for the killed ones to end.
nf_kill_cookie() {
  local f pid i new tries=0 killed=() unended deadline=$((SECONDS + 5))
  local -A hit=()
  [[ -d /proc/self ]] || return 0
  while :; do
    new=0
    while IFS='' read -r f; do
      pid=${f#/proc/}
      pid=${pid%/environ}
      kill -KILL "$pid" 2>/dev/null || continue
      [[ -n ${hit[$pid]-} ]] && continue
      hit[$pid]=1 new=1
      killed+=("$pid")
    done < <(grep -lzx -- "NIXFLOW_COOKIE=$1" /proc/[0-9]*/environ 2>/dev/null)
    ((SECONDS < deadline)) || break
    if ((!new)); then
      nf_unsure_since "$2" "$1"
      case $? in
        0) ;;
        2) ((tries++ < 5)) || break ;;
        *) break ;;
      esac
      nf_sleep_ms 10
    fi
  done
  for ((i = 0; i < 200 && ${#killed[@]}; i++)); do
    unended=()
    for pid in "${killed[@]}"; do
      nf_gone "$pid" || unended+=("$pid")
    done
    killed=("${unended[@]}")
    ((${#killed[@]} == 0)) || nf_sleep_ms 10
  done
}

# nf_unsure_since PID COOKIE tells whether a process started after PID
# may have been missed by nf_kill_cookie's last look: one not killed yet
# (not in its hit) that carries COOKIE (it was executing a program during
# the look, and is done now; or its main thread has ended: see
# nf_thread_env), which it kills, adding it to nf_kill_cookie's hit and
# killed; or one that may be executing a program now (see nf_settle). Its
# status: 0, yes; 2, only a process whose environment is empty for now;
# 1, none. Unless the pid counter wrapped, only the pids after PID need a
# look; bash builtins only.
nf_unsure_since() {
  local last p e kv empty=0 pids=()
  { read -r last </proc/sys/kernel/ns_last_pid; } 2>/dev/null || last=
  if [[ $last =~ ^[0-9]+$ ]] && ((last >= $1 && last - $1 < 4096)); then
    for ((p = $1 + 1; p <= last; p++)); do
      [[ -e /proc/$p ]] && pids+=("$p")
    done
  else
    for p in /proc/[0-9]*; do pids+=("${p#/proc/}"); done
  fi
  for p in "${pids[@]}"; do
    [[ -z ${hit[$p]-} ]] || continue
    # Not another user's process, nor one gone.
    { mapfile -d '' -t e <"/proc/$p/environ"; } 2>/dev/null || nf_thread_env "$p" || continue
    if ((${#e[@]} == 0)); then
      nf_settle "$p"
      case $? in 1) return 0 ;; 2) empty=1 ;; esac
    fi
    for kv in "${e[@]}"; do
      [[ $kv == "NIXFLOW_COOKIE=$2" ]] || continue
      # nf_kill_cookie's grep, which reads environments through pids,
      # cannot see a process whose main thread has ended: killed here.
      if kill -KILL "$p" 2>/dev/null; then hit[$p]=1 killed+=("$p"); fi
      return 0
    done
  done
  ((empty)) && return 2
  return 1
}

# nf_stopper PGID FIRST: SIGNAL, then SIGTERM after the interrupt grace (for
# SIGINT), then SIGKILL after the terminate grace.
nf_stopper() {
  kill "-$2" -- "-$1" 2>/dev/null || return 0
  if [[ $2 == INT ]]; then
    nf_sleep_ms "$nf_ig_ms"
    kill -TERM -- "-$1" 2>/dev/null || return 0
  fi
  nf_sleep_ms "$nf_tg_ms"
  kill -KILL -- "-$1" 2>/dev/null || true
}

# nf_host_environ keeps this host's environment as the script got it, in
# nf_host_kv (NAME=VALUE): what a step, a condition or a command provider
# starts from (nf_exec_clean). No variable of its own: one named as an
# environment variable would read its own value instead.
nf_host_environ() {
  declare -ga nf_host_kv=()
  # Every variable, by the letter it starts with (no compgen: a bash
  # built without readline, as nixpkgs' non-interactive one, has none);
  # the exported ones kept (not arrays, which are not exported).
  set -- "${!A@}" "${!B@}" "${!C@}" "${!D@}" "${!E@}" "${!F@}" "${!G@}" "${!H@}" "${!I@}" "${!J@}" "${!K@}" "${!L@}" "${!M@}" "${!N@}" "${!O@}" "${!P@}" "${!Q@}" "${!R@}" "${!S@}" "${!T@}" "${!U@}" "${!V@}" "${!W@}" "${!X@}" "${!Y@}" "${!Z@}" "${!a@}" "${!b@}" "${!c@}" "${!d@}" "${!e@}" "${!f@}" "${!g@}" "${!h@}" "${!i@}" "${!j@}" "${!k@}" "${!l@}" "${!m@}" "${!n@}" "${!o@}" "${!p@}" "${!q@}" "${!r@}" "${!s@}" "${!t@}" "${!u@}" "${!v@}" "${!w@}" "${!x@}" "${!y@}" "${!z@}" "${!_@}"
  while (($#)); do
    [[ ${!1@a} == *x* && ${!1@a} != *[aA]* ]] && nf_host_kv+=("$1=${!1}")
    shift
  done
}

# nf_exec_clean NAME=VALUE... -- COMMAND ARGS... executes COMMAND with
# this host's environment as the script got it (nf_host_kv), the
# NAME=VALUE given over it: a variable of the runtime named as one of
# them (a function's local dir, body or i) would reach COMMAND with the
# runtime's value, or give its value to what the runtime does next (the
# body of the step it starts). No variable of its own either: everything
# is in its arguments, expanded before it runs.
nf_exec_clean() {
  set -- "${nf_host_kv[@]}" "$@"
  while (($#)) && [[ $1 != -- ]]; do
    # A variable of that name is unset first: an array of the runtime's
    # (nf_kv) would take the value as its first element and pass nothing
    # on, and bash's own (RANDOM, SECONDS) would not pass it either.
    while declare -p "${1%%=*}" >/dev/null 2>&1; do unset -v "${1%%=*}" 2>/dev/null || break; done
    # shellcheck disable=SC2163 # $1 is NAME=VALUE
    export "$1" 2>/dev/null || true
    shift
  done
  shift
  exec "$@"
}

# nf_note_fds notes, once the runtime's own descriptors are open (its
# output kept as 4, its lock), every descriptor but 0, 1 and 2, those its
# caller gave it too, for nf_close_fds: one listing a run, not one a
# step. All but the run's private fifo (nf_sleep_fd): every process the
# script starts keeps that one, by which its watchdog finds what is left
# of a killed script's run.
nf_note_fds() {
  local fd dir=/dev/fd
  [[ -d $dir ]] || dir=/proc/$BASHPID/fd
  # fd 4 and the lock whatever the listing shows.
  nf_close_redirs=' 4>&-'
  [[ -z ${nf_lock_fd:-} ]] || nf_close_redirs+=" $nf_lock_fd>&-"
  for fd in "$dir"/*; do
    fd=${fd##*/}
    [[ $fd == [0-9]* ]] && ((fd > 2 && fd != 4 && fd != nf_sleep_fd && fd != ${nf_lock_fd:-0})) && nf_close_redirs+=" $fd>&-"
  done
}

# nf_close_fds closes, in a process the runtime starts, the descriptors
# nf_note_fds noted: they are none of a step's business. Through one a
# step could write around masking (the script's output), or hold the
# run's output open after it ended.
nf_close_fds() {
  [[ -z ${nf_close_redirs:-} ]] || { eval "exec $nf_close_redirs"; } 2>/dev/null
  return 0
}

# nf_spawn KIND BODY DIR: start a step (KIND step: bash -eo pipefail), a
# step's condition (KIND stepcond: a plain bash -c, its output the
# step's) or a job's condition (KIND cond: a plain bash -c, its output
# dropped but for its stderr and its announcements) in its own process group with the step
# environment nf_env, its output read line by line. Sets nf_pid and
# nf_readers.
nf_spawn() {
  local kind=$1 body=$2 dir=$3 k
  local fifo=$nf_ctl/fifo
  # One pair of pipes per job, used by one process at a time.
  # Made for every job at once when the run starts.
  nf_seq=$((nf_seq + 1))
  nf_copiers=0
  if [[ $kind == step || $kind == stepcond ]]; then
    nf_reader "$nf_job" "$nf_step" "$nf_tail" "$fifo.out" "$fifo.err" "$nf_ctl/ended" "$nf_seq" &
    nf_readers=$!
  else
    # Of its stdout, only what announces a value to mask is kept (see
    # nf_job_body). cat, not a loop of bash: a chatty condition blocks
    # on a full pipe. nf_await bounds them.
    cat <"$fifo.out" >"$nf_ctl/cond.out" &
    nf_readers=$!
    cat <"$fifo.err" >"$nf_ctl/cond.err" &
    nf_readers+=" $!"
    nf_copiers=1
  fi
  nf_cookie=$nf_run_id.$BASHPID.$nf_seq
  # Job control, for this one command: it gets a process group of its own
  # (its pid), which a timeout or Ctrl-C stops as a whole.
  set -m
  (
    trap - PIPE USR1 INT HUP QUIT TERM
    nf_close_fds
    cd -P -- "$dir" 2>/dev/null || { printf 'cannot enter the directory %s\n' "$dir" >&2; exit 127; }
    local -a nf_kv=()
    for k in "${!nf_env[@]}"; do nf_kv+=("$k=${nf_env[$k]}"); done
    set -- -c "$body"
    [[ $kind == step ]] && set -- -eo pipefail "$@"
    nf_exec_clean "${nf_kv[@]}" "NIXFLOW_COOKIE=$nf_cookie" -- "${nf_sigreset[@]}" bash --noprofile --norc "$@"
  ) </dev/null >"$fifo.out" 2>"$fifo.err" &
  nf_pid=$!
  set +m
}

# nf_await INTERRUPTIBLE DEADLINE_MS: wait for nf_pid. INTERRUPTIBLE says
# what stops it: 1 the first Ctrl-C, 0 only the second. DEADLINE_MS (0:
# none) is when a timeout stops it; nf_deadline_kind says whose. Sets
# nf_rc and nf_stop (""; cancel; timeout).
nf_await() {
  local interruptible=$1 deadline=$2 watcher=''
  nf_stop='' nf_stopper=''
  if ((deadline > 0)); then
    nf_now
    (
      nf_sleep_ms $((deadline - nf_t))
      printf '%s\n' "$nf_deadline_kind" >"$nf_ctl/timedout.$nf_pid"
      nf_stopper "$nf_pid" TERM
    ) &
    watcher=$!
  fi
  # From here a signal (USR1 from the scheduler) stops the process, and
  # one that came before is seen now.
  nf_watch_int=$interruptible nf_watch_pid=$nf_pid
  nf_on_wake
  nf_wait_gone "$nf_pid"
  nf_watch_pid=''
  # No process of the step (or condition) outlives it: its process group
  # goes, and the processes that left the group (setsid) too, as nixflow
  # run does after every step.
  kill -KILL -- "-$nf_pid" 2>/dev/null || true
  nf_kill_cookie "$nf_cookie" "$nf_pid"
  [[ -n $watcher ]] && kill -KILL "$watcher" 2>/dev/null
  [[ -n $nf_stopper ]] && kill -KILL "$nf_stopper" 2>/dev/null
  local r
  # A wait ends early on a signal: wait again until each reader is gone,
  # or it would read the next step's output. The readers, which may be
  # behind the step by seconds, read to the end, or, told that the step
  # has ended, until 2 to 3 s of quiet: what still holds the pipes then
  # escaped (a daemon that left the process group and cleared its
  # environment), and this job's later steps get new pipes.
  [[ -n $nf_readers ]] && printf '%s\n' "$nf_seq" >"$nf_ctl/ended"
  if ((${nf_copiers:-0})); then
    # A job condition's copiers (cat) are never behind: 2 to 3 s, then
    # what still holds the pipes escaped.
    local end=$((SECONDS + 3)) left
    while :; do
      left=''
      for r in $nf_readers; do kill -0 "$r" 2>/dev/null && left+=" $r"; done
      [[ -n $left ]] || break
      if ((SECONDS >= end)); then
        # shellcheck disable=SC2086
        kill -KILL $left 2>/dev/null
        printf '%s\n' "$nf_seq" >"$nf_ctl/ended.cut"
        break
      fi
      nf_sleep_ms 20
    done
  fi
  for r in $nf_readers; do
    while kill -0 "$r" 2>/dev/null; do wait "$r" 2>/dev/null; done
  done
  if [[ -n $nf_readers ]] && nf_ended "$nf_ctl/ended.cut" "$nf_seq"; then
    rm -f "$nf_ctl/fifo.out" "$nf_ctl/fifo.err"
    mkfifo -m 600 "$nf_ctl/fifo.out" "$nf_ctl/fifo.err"
  fi
  [[ -n $watcher ]] && wait "$watcher" 2>/dev/null
  [[ -n $nf_stopper ]] && wait "$nf_stopper" 2>/dev/null
  if [[ -z $nf_stop ]] && nf_should_stop "$interruptible" && ((nf_rc > 128)); then
    nf_stop=cancel
  fi
  if [[ -z $nf_stop && -e $nf_ctl/timedout.$nf_pid ]]; then
    nf_stop=timeout
    IFS='' read -r nf_timeout_kind <"$nf_ctl/timedout.$nf_pid"
  fi
  [[ -e $nf_ctl/timedout.$nf_pid ]] && rm -f "$nf_ctl/timedout.$nf_pid"
  true
}

# nf_should_stop INTERRUPTIBLE: the run was aborted, or cancelled and the
# current process is one the first Ctrl-C stops.
nf_should_stop() {
  [[ -e $nf_state/aborted ]] || { (($1)) && [[ -e $nf_state/cancelled ]]; }
}

# nf_on_wake is the job's USR1 trap (the scheduler's word that the run was
# cancelled or aborted): it stops the running process or ends a wait.
nf_on_wake() {
  nf_woke=1
  if [[ -n ${nf_copy_pid:-} && -e $nf_state/aborted ]]; then
    kill -KILL "$nf_copy_pid" 2>/dev/null || true
  fi
  if [[ -n ${nf_watch_pid:-} && -e $nf_state/aborted ]]; then
    # The second signal cuts the graces short: SIGKILL at once.
    nf_stop=cancel
    [[ -n ${nf_stopper:-} ]] && kill -KILL "$nf_stopper" 2>/dev/null
    kill -KILL -- "-$nf_watch_pid" 2>/dev/null
  elif [[ -n ${nf_watch_pid:-} && -z ${nf_stopper:-} ]] && nf_should_stop "$nf_watch_int"; then
    nf_stop=cancel
    nf_stopper "$nf_watch_pid" INT &
    nf_stopper=$!
  fi
  if [[ -n ${nf_sleeper:-} ]] && nf_should_stop "$nf_sleep_int"; then
    kill -KILL "$nf_sleeper" 2>/dev/null
  fi
  return 0
}

# nf_wait_ms MS INTERRUPTIBLE: a wait between attempts; returns 1 when the
# run was cancelled meanwhile.
nf_wait_ms() {
  (nf_sleep_ms "$1") &
  nf_sleeper=$! nf_sleep_int=$2
  nf_on_wake
  nf_wait_gone "$nf_sleeper"
  nf_sleeper=''
  ! nf_should_stop "$2"
}

# --- jobs ------------------------------------------------------------------

# nf_job_result STATUS REASON DOMAIN: the job's outcome, for the summary.
nf_job_result() {
  J_status=$1 J_reason=$2 J_domain=${3:-}
  if [[ -n $J_reason ]]; then nf_mask "$J_reason"; J_reason=$nf_m; fi
}

# nf_expr_holds TABLE SUCCESS FAILURE CANCELLED: a status expression's
# value, from the truth table the compiler made of it (one digit for each
# combination, at SUCCESS*4 + FAILURE*2 + CANCELLED).
nf_expr_holds() {
  [[ ${1:$(($2 * 4 + $3 * 2 + $4)):1} == 1 ]]
}

# nf_status_holds JOB: the status function of a job's condition over the
# results of its needs. Sets nf_hold_status and nf_hold_reason when not.
nf_status_holds() {
  local i=$1 n
  nf_hold_status='' nf_hold_reason=''
  if [[ -e $nf_state/aborted ]]; then
    nf_hold_status=cancelled nf_hold_reason="run aborted"
    return 1
  fi
  local cancelled=0
  [[ -e $nf_state/cancelled ]] && cancelled=1
  case ${nf_job_cond[i]} in
    always) return 0 ;;
    expr)
      local ok=1 failed=0
      if ((!cancelled)); then
        for n in ${nf_job_needs[i]}; do
          [[ ${nf_res_status[n]} == success || (${nf_res_status[n]} == failure && ${nf_res_allowed[n]} == 1) ]] || ok=0
        done
        for n in ${nf_job_anc[i]}; do
          [[ ${nf_res_status[n]} == failure && ${nf_res_allowed[n]} == 0 ]] && failed=1
        done
      else
        ok=0
      fi
      nf_expr_holds "${nf_job_table[i]}" "$ok" "$failed" "$cancelled" && return 0
      if ((cancelled)); then
        nf_hold_status=cancelled nf_hold_reason="run cancelled"
      else
        nf_hold_status=skipped nf_hold_reason="condition ${nf_job_expr[i]} is false"
      fi
      return 1
      ;;
    cancelled)
      ((cancelled)) && return 0
      nf_hold_status=skipped nf_hold_reason="the run was not cancelled"
      return 1
      ;;
    failure)
      if ((cancelled)); then nf_hold_status=cancelled nf_hold_reason="run cancelled"; return 1; fi
      for n in ${nf_job_anc[i]}; do
        [[ ${nf_res_status[n]} == failure && ${nf_res_allowed[n]} == 0 ]] && return 0
      done
      nf_hold_status=skipped nf_hold_reason="no job it needs failed"
      return 1
      ;;
    *)
      if ((cancelled)); then nf_hold_status=cancelled nf_hold_reason="run cancelled"; return 1; fi
      for n in ${nf_job_needs[i]}; do
        if [[ ${nf_res_status[n]} == success || (${nf_res_status[n]} == failure && ${nf_res_allowed[n]} == 1) ]]; then
          continue
        fi
        nf_goquote "${nf_jobs[n]}"
        if [[ ${nf_res_status[n]} == failure ]]; then
          nf_hold_reason="needed job $nf_q failed"
        else
          nf_hold_reason="needed job $nf_q was ${nf_res_status[n]}"
        fi
        nf_hold_status=skipped
        return 1
      done
      return 0
      ;;
  esac
}

# nf_job INDEX runs one job, in a subshell of its own; its result goes to
# the state directory.
nf_job() {
  local i=$1
  trap nf_on_wake USR1
  # The run's signals are the main process's (a terminal sends them to
  # every process of its group).
  trap '' INT HUP QUIT TERM
  nf_job=${nf_jobs[i]}
  nf_job_"$i"
  nf_ctl=$nf_tmp/ctl/$i
  J_ws=$nf_run_dir/jobs/$nf_job
  # The directories were made for every job when the run started: every
  # process this script starts costs time.
  nf_seq=0
  nf_now
  J_start=$nf_t J_deadline=0 J_timedout=0 J_steps_run=0 J_attempts=0 J_started=0
  J_status='' J_reason='' J_domain=''
  J_cleanup=${nf_job_cleanup[i]}
  local J_interruptible=1
  ((J_cleanup)) && J_interruptible=0
  ((J_timeout_ms > 0)) && J_deadline=$((J_start + J_timeout_ms))
  nf_load_masks

  local -A nf_env=() J_jobenv=() J_outmap=() J_nul=()
  local -a J_path=()
  nf_job_base_env "$i"
  # How each job it needs ended, as NEEDS_<JOB>_RESULT, and their outputs,
  # as NEEDS_<JOB>_<KEY> (an output named result wins). Two jobs may give
  # one name (job x an output y_k, job x-y an output k): nf_clash says so,
  # and the job fails.
  local n k nf_clash=''
  local -A nf_from=()
  for n in ${nf_job_needs[i]}; do
    k=${nf_res_status[n]}
    [[ $k == failure ]] && ((nf_res_allowed[n])) && k=failure-allowed
    nf_env_name "${nf_jobs[n]}" RESULT
    nf_needs_set "$n" '' "$k"
    [[ -f $nf_tmp/outputs/$n ]] || continue
    while IFS='' read -r -d '' k && IFS='' read -r -d '' v; do
      nf_env_name "${nf_jobs[n]}" "$k"
      nf_needs_set "$n" "$k" "$v"
    done <"$nf_tmp/outputs/$n"
  done
  nf_apply_overrides
  local -A J_env=()
  for k in "${!nf_env[@]}"; do J_env[$k]=${nf_env[$k]}; done

  nf_job_body "$i"
  nf_job_finish "$i"
}

# nf_needs_set JOB KEY VALUE sets nf_env[$nf_n] to VALUE, which job JOB
# (an index) gives as its output KEY, or as its result for an empty KEY,
# for nf_job (its locals nf_from and nf_clash): a name another job gave
# already is a clash, said as nixflow run says it.
nf_needs_set() {
  local other=${nf_from[$nf_n]-} a
  if [[ -n $other && ${other%%$'\x1f'*} != "$1" && -z $nf_clash ]]; then
    nf_needs_what "${other%%$'\x1f'*}" "${other#*$'\x1f'}"
    a=$nf_x
    nf_needs_what "$1" "$2"
    nf_clash="$nf_n would be both $a and $nf_x: rename one of them"
  fi
  nf_from[$nf_n]=$1$'\x1f'$2
  nf_env[$nf_n]=$3
}

# nf_needs_what JOB KEY sets nf_x to `job "x"'s output "k"`, or `job
# "x"'s result` for an empty KEY.
nf_needs_what() {
  nf_goquote "${nf_jobs[$1]}"
  nf_x="job $nf_q's result"
  [[ -z $2 ]] && return
  nf_x="job $nf_q's output "
  nf_goquote "$2"
  nf_x+=$nf_q
}

# nf_env_name JOB KEY sets nf_n to NEEDS_<JOB>_<KEY> (no subshell: every
# process the script starts costs time), in ASCII's upper case whatever
# the host's locale (a Turkish one makes i an İ).
nf_env_name() {
  local LC_ALL=C
  local j=${1^^} k=${2^^}
  j=${j//[!A-Z0-9]/_}
  k=${k//[!A-Z0-9]/_}
  nf_n=NEEDS_${j}_$k
}

nf_job_body() {
  local i=$1
  if [[ -n $nf_clash ]]; then
    # One value would be lost, or pass for another job's result.
    nf_job_result failure "$nf_clash" step
    return
  fi
  # A bash condition runs in the repository with the job's environment,
  # before any workspace exists.
  if [[ -n $J_condcmd ]]; then
    nf_step=''
    nf_spawn cond "$J_condcmd" "$nf_repo"
    # The condition is the job's time too: its timeout bounds it.
    nf_deadline_kind=job
    nf_await "$J_interruptible" "$J_deadline"
    local line nf_v
    # A value it announces with ::add-mask::, on either stream, is a
    # secret, as a step's condition's: all of them are learnt before its
    # stderr is shown (the order of the two streams is lost here). Only
    # the lines that can announce one are looked at.
    if [[ -s $nf_ctl/cond.out || -s $nf_ctl/cond.err ]]; then
      while IFS='' read -r line || [[ -n $line ]]; do
        nf_announcement "$line" && [[ -n $nf_v ]] && nf_announce "$nf_v" "$nf_job"
      done < <(grep -a -h -- '::add-mask::' "$nf_ctl/cond.out" "$nf_ctl/cond.err")
    fi
    : >"$nf_ctl/cond.out"
    if [[ -s $nf_ctl/cond.err ]]; then
      while IFS='' read -r line; do
        nf_announcement "$line" && line='::add-mask::***'
        [[ -n $line ]] && nf_warn "$nf_job" "condition: $line"
      done <"$nf_ctl/cond.err"
    fi
    if [[ $nf_stop == cancel ]]; then nf_job_result cancelled "run cancelled"; return; fi
    if [[ $nf_stop == timeout ]]; then
      J_timedout=1
      nf_job_result failure "job timed out after $J_timeout_str while its condition ran" step
      return
    fi
    if ((nf_rc != 0)); then
      nf_goquote "$J_condcmd"
      nf_job_result skipped "condition $nf_q exited with status $nf_rc"
      return
    fi
  fi
  nf_emit job_start "$nf_job" "" msg=local
  J_started=1
  nf_realise_deps || return

  if ((J_copyrepo)); then
    nf_prepare_copy || return
  fi
  nf_restore_inputs || return
  # The control files exist, empty, when the first step starts: a step
  # may read them, or test [ -f "$JOB_ENV" ], as under nixflow run.
  : >"$nf_ctl/env"
  : >"$nf_ctl/path"
  : >"$nf_ctl/output"
  nf_run_steps
  nf_save_outputs
}

# nf_realise_deps builds the deps of the job's steps that are missing.
nf_realise_deps() {
  local d k missing=() drvs=() seen=" "
  local -a paths dv
  for k in "${!S_name[@]}"; do
    [[ -n ${S_deps[k]} ]] || continue
    mapfile -t paths <<<"${S_deps[k]}"
    mapfile -t dv <<<"${S_drvs[k]}"
    for d in "${!paths[@]}"; do
      [[ $seen == *" ${paths[d]} "* ]] && continue
      seen+="${paths[d]} "
      [[ -e ${paths[d]} ]] && continue
      if [[ -z ${dv[d]:-} ]]; then missing+=("${paths[d]}"); else drvs+=("${dv[d]}"); fi
    done
  done
  if ((${#missing[@]} > 0)); then
    local IFS=,
    local list="${missing[*]}"
    unset IFS
    nf_job_result failure "dependency ${list//,/, } does not exist and has no derivation to build it" build
    return 1
  fi
  ((${#drvs[@]} == 0)) && return 0
  if ! command -v nix-store >/dev/null 2>&1; then
    nf_job_result failure "dependencies not built and no nix-store here to build them: ${drvs[*]}" build
    return 1
  fi
  if ((${#drvs[@]} == 1)); then nf_warn "$nf_job" "building 1 dependency"; else nf_warn "$nf_job" "building ${#drvs[@]} dependencies"; fi
  nf_step='(build)'
  nf_tail=$nf_ctl/build.tail
  local -A nf_env=()
  nf_spawn step "nix-store --realise $(printf '%q ' "${drvs[@]}") >/dev/null" "$nf_repo"
  nf_deadline_kind=job
  nf_await "$J_interruptible" "$J_deadline"
  nf_step=''
  if [[ $nf_stop == cancel ]]; then nf_job_result cancelled "run cancelled"; return 1; fi
  if [[ $nf_stop == timeout ]]; then
    J_timedout=1
    nf_job_result failure "job timed out after $J_timeout_str while its dependencies were built" step
    return 1
  fi
  if ((nf_rc != 0)); then
    # As nixflow run says it: the derivations, and Nix's own verdict,
    # its last error line among the last lines, in the order they came
    # (the ring is not; the whole log was shown as it came, masked as
    # the tail is).
    local list verdict=''
    printf -v list '%s, ' "${drvs[@]}"
    verdict=$(sort -n "$nf_tail.stdout" 2>/dev/null | cut -f2- | grep -E '^[[:space:]]*error:' | tail -n 1)
    verdict=${verdict#*error:}
    verdict=${verdict#"${verdict%%[![:space:]]*}"}
    verdict=${verdict%"${verdict##*[![:space:]]}"}
    nf_job_result failure "build of ${list%, } failed${verdict:+: $verdict}" build
    return 1
  fi
}

# nf_prepare_copy fills the job's workspace (nf_copy_repo) as a step
# runs: in a process group of its own, stopped by the job's timeout and
# by Ctrl-C (the first, or the second for a cleanup job), nothing of it
# outliving it, as nixflow run prepares a workspace. Returns 1, the job's
# result set, when it did not end well.
nf_prepare_copy() {
  nf_seq=$((nf_seq + 1))
  nf_cookie=$nf_run_id.$BASHPID.$nf_seq
  nf_readers=''
  set -m
  (
    trap - PIPE USR1 INT HUP QUIT TERM
    nf_close_fds
    NIXFLOW_COOKIE=$nf_cookie nf_copy_repo "$J_ws"
  ) </dev/null >/dev/null 2>"$nf_ctl/copy.err" &
  nf_pid=$!
  set +m
  nf_deadline_kind=job
  nf_await "$J_interruptible" "$J_deadline"
  case $nf_stop in
    cancel)
      nf_job_result cancelled "run cancelled"
      return 1
      ;;
    timeout)
      J_timedout=1
      nf_job_result failure "job timed out after $J_timeout_str while its local workspace was prepared" step
      return 1
      ;;
  esac
  if ((nf_rc != 0)); then
    nf_job_result failure "prepare local workspace: $(sed -n '$p' "$nf_ctl/copy.err")" executor
    return 1
  fi
}

# nf_copy_repo WS fills the workspace from the working tree as git sees it
# (tracked files with their changes, untracked files that are not ignored,
# and .git), else from the whole directory, without the run's own state.
nf_copy_repo() {
  local ws=$1 top s
  if command -v git >/dev/null 2>&1 && top=$(git -C "$nf_repo" rev-parse --show-toplevel 2>/dev/null); then
    (cd "$nf_repo" && git ls-files -z --cached --others --exclude-standard | while IFS='' read -r -d '' f; do
      for s in "${nf_repo_skip[@]}"; do [[ $f == "$s"* ]] && continue 2; done
      [[ -e $f || -L $f ]] && printf '%s\0' "$f"
    done | tar --null --no-recursion -T - -cf - | tar -C "$ws" -xf -) || return 1
    if [[ $(cd "$nf_repo" && pwd -P) == "$(cd "$top" && pwd -P)" && -d $nf_repo/.git ]]; then
      cp -a "$nf_repo/.git" "$ws/.git" || return 1
    fi
    return 0
  fi
  # Without git, nothing tells the ignored files of a repository (a .env
  # of secrets) from the others: copy nothing rather than everything.
  local d=$nf_repo
  [[ $d == /* ]] || d=$PWD/$d
  while :; do
    if [[ -e $d/.git || -L $d/.git ]]; then
      printf 'copy %s: git is not on PATH, and %s is a git repository: without git, nixflow cannot tell its ignored files (a .env, say) from the others, and copies nothing (hint: install git, or set copyRepo = false on jobs that need no file of the repository)\n' "$nf_repo" "$d" >&2
      return 1
    fi
    [[ -z $d || $d == / ]] && break
    d=${d%/*}
    [[ -n $d ]] || d=/
  done
  local -a excl=()
  local rel
  for d in "$nf_run_dir" "$nf_state_home/nixflow" "$nf_cache_home/nixflow"; do
    case $d in
      "$nf_repo"/*) rel=${d#"$nf_repo"/}; excl+=("--exclude=./$rel") ;;
    esac
  done
  (cd "$nf_repo" && tar "${excl[@]}" -cf - .) | tar -C "$ws" -xf -
}

# nf_outside PATH: PATH, in the workspace, is or goes through a symbolic
# link that leads outside it, or an absolute one (nixflow run refuses
# those too). (realpath runs only when there is a link.)
nf_outside() {
  local rest=$1 p=$J_ws link=0 n=0 c t real ws
  while [[ -n $rest ]]; do
    c=${rest%%/*}
    [[ $rest == */* ]] && rest=${rest#*/} || rest=''
    [[ -n $c ]] || continue
    p+=/$c
    if [[ -L $p ]]; then
      # A link's target is walked part by part too.
      link=1
      ((++n <= 40)) || return 0
      t=$(readlink -- "$p") || return 0
      [[ $t == /* ]] && return 0
      rest=$t${rest:+/$rest}
      p=${p%/*}
    fi
  done
  ((link)) || return 1
  command -v realpath >/dev/null 2>&1 || return 1
  real=$(realpath -m -- "$J_ws/$1" 2>/dev/null) || return 0
  ws=$(realpath -m -- "$J_ws" 2>/dev/null) || return 0
  [[ $real == "$ws" || $real == "$ws"/* ]] && return 1
  return 0
}

# nf_in_the_way DST DIR: what in the workspace stands where an input is
# restored to DST (DIR: 1 for a directory), as actions/artifacts.go's
# inTheWayScript says it: where a directory goes, a file, or a symbolic
# link that leads to no directory or out of the workspace; at DST, for a
# directory a file or any symbolic link, for a file a directory. Sets
# nf_x to the reason, empty for none.
nf_in_the_way() {
  local -a parts
  local p='' i n what top r q
  nf_x=''
  top=$(cd -P -- "$J_ws" && pwd) || return 0
  IFS=/ read -ra parts <<<"$1"
  n=${#parts[@]}
  for ((i = 0; i < n; i++)); do
    p=${p:+$p/}${parts[i]}
    what=''
    if [[ -L $J_ws/$p ]] && ((i == n - 1 && $2)); then
      what='a symbolic link'
    elif [[ -L $J_ws/$p ]] && ((i < n - 1)); then
      if [[ ! -d $J_ws/$p ]]; then
        what='a symbolic link'
      else
        r=$(cd -P -- "$J_ws/$p" && pwd)
        [[ $r == "$top" || $r == "$top"/* ]] || what='a symbolic link out of the workspace'
      fi
    elif [[ -e $J_ws/$p && ! -d $J_ws/$p ]] && ((i < n - 1 || $2)); then
      what='a file'
    elif [[ -d $J_ws/$p && ! -L $J_ws/$p ]] && ((i == n - 1 && !$2)); then
      what='a directory'
    fi
    [[ -n $what ]] || continue
    q=$nf_q
    nf_goquote "$p"
    nf_x="$nf_q in the workspace is $what, where "
    nf_q=$q
    if ((i < n - 1)); then
      nf_x+='a directory goes'
    elif (($2)); then
      nf_x+="the artifact's directory goes"
    else
      nf_x+="the artifact's file goes"
    fi
    return 0
  done
}

# nf_tree_in_the_way DST SRC: before the tree at SRC is merged into DST,
# a directory already in the workspace, what stands where its paths go,
# as executors.TreeInTheWayScript says it: a symbolic link or a file
# where one of its directories goes, a directory where one of its files
# goes. Sets nf_x to the reason, empty for none; then removes the files
# and links where its files go, which cp -a would write through.
nf_tree_in_the_way() {
  local list=$nf_ctl/tree p e absent='' what='' q i
  local -a ents=() gone=()
  nf_x=''
  # Through a file: bash reads a pipe a byte at a time. Sorted, so that of
  # several things in the way the one named is nixflow run's.
  (
    cd -- "$2" || exit
    find . -mindepth 1 -print0 | LC_ALL=C sort -z
    ((PIPESTATUS[0] == 0 && PIPESTATUS[1] == 0))
  ) >"$list" || { rm -f -- "$list"; return 1; }
  mapfile -d '' -t ents <"$list"
  rm -f -- "$list"
  for ((i = 0; i < ${#ents[@]}; i++)); do
    e=${ents[i]#./}
    p=$J_ws/$1/$e
    if [[ -n $absent ]]; then
      [[ $p == "$absent"/* ]] && continue
      absent=''
    fi
    if [[ -d $2/$e && ! -L $2/$e ]]; then
      if [[ -L $p ]]; then what='a symbolic link'
      elif [[ -d $p ]]; then continue
      elif [[ -e $p ]]; then what='a file'
      else absent=$p; continue
      fi
      what+=', where a directory of the artifact goes'
    elif [[ -d $p && ! -L $p ]]; then
      what='a directory, where a file of the artifact goes'
    else
      continue
    fi
    q=$nf_q
    if [[ $1 == . ]]; then nf_goquote "$e"; else nf_goquote "$1/$e"; fi
    nf_x="$nf_q in the workspace is $what"
    nf_q=$q
    return 0
  done
  for e in "${ents[@]}"; do
    e=${e#./}
    p=$J_ws/$1/$e
    if [[ ! -d $2/$e || -L $2/$e ]] && [[ -L $p || -e $p ]]; then
      gone+=("$p")
    fi
  done
  ((${#gone[@]} == 0)) || printf '%s\0' "${gone[@]}" | xargs -0 rm -f --
}

# nf_restore_inputs copies the artifacts a job reads into its workspace.
nf_restore_inputs() {
  local k name path dir meta_path meta_dir dst
  for ((k = 0; k < ${#J_inputs[@]}; k += 2)); do
    name=${J_inputs[k]} path=${J_inputs[k + 1]}
    dir=$nf_run_dir/artifacts/$name
    nf_goquote "$name"
    if [[ ! -f $dir/meta ]]; then
      nf_job_result failure "restore artifacts: artifact $nf_q: not produced (did the job that outputs it fail before creating it?)" step
      return 1
    fi
    { IFS='' read -r meta_path; IFS='' read -r meta_dir; } <"$dir/meta"
    dst=$meta_path
    if [[ -n $path ]]; then
      dst=$path
      ((meta_dir)) || dst=$path/${meta_path##*/}
    fi
    nf_in_the_way "$dst" "$meta_dir"
    if [[ -n $nf_x ]]; then
      nf_job_result failure "restore artifacts: artifact $nf_q to \"$dst\": $nf_x" step
      return 1
    fi
    if ((meta_dir)) && [[ -d $J_ws/$dst && ! -L $J_ws/$dst ]]; then
      # A merge with a directory already there.
      if ! nf_tree_in_the_way "$dst" "$dir/data"; then
        nf_job_result failure "restore artifacts: artifact $nf_q to \"$dst\": copy failed" executor
        return 1
      fi
      if [[ -n $nf_x ]]; then
        nf_job_result failure "restore artifacts: artifact $nf_q to \"$dst\": $nf_x" step
        return 1
      fi
    fi
    if ((meta_dir)); then
      mkdir -p "$J_ws/$dst" && nf_copy_in "$dir/data/." "$J_ws/$dst/"
    else
      # A symbolic link at dst is replaced, not written through.
      mkdir -p "$(dirname -- "$J_ws/$dst")" && rm -f -- "$J_ws/$dst" && nf_copy_in "$dir/data" "$J_ws/$dst"
    fi || {
      if [[ -e $nf_state/aborted ]]; then
        nf_job_result cancelled "run cancelled"
      else
        nf_job_result failure "restore artifacts: artifact $nf_q to \"$dst\": copy failed" executor
      fi
      return 1
    }
  done
}

# nf_wait_gone PID waits until the child PID has ended (a trap that runs
# meanwhile ends a wait early), without bash's word on a child killed by
# a signal (its source text, under set -m). Sets nf_rc to its status. A
# wait that the trap (nf_on_wake) cut short says 128+SIGUSR1, also when
# the child ended meanwhile: then bash keeps its status for the next wait.
nf_wait_gone() {
  local rc
  while :; do
    nf_woke=0
    wait "$1" 2>/dev/null
    nf_rc=$?
    if ((nf_woke)) && ! kill -0 "$1" 2>/dev/null; then
      wait "$1" 2>/dev/null
      rc=$?
      # (127: bash gave the status already, to the wait cut short.)
      ((rc == 127)) || nf_rc=$rc
      return 0
    fi
    kill -0 "$1" 2>/dev/null || return 0
  done
}

# nf_copy_in SRC DST copies an artifact into the workspace (cp -a) in the
# background, so that the second Ctrl-C (nf_on_wake) can end it, as it
# ends a step: an artifact can be large.
nf_copy_in() {
  cp -a "$1" "$2" &
  nf_copy_pid=$!
  # A signal that came before is seen now.
  nf_on_wake
  nf_wait_gone "$nf_copy_pid"
  nf_copy_pid=''
  return "$nf_rc"
}

# nf_save_outputs saves every declared output, also when steps failed.
nf_save_outputs() {
  # Any fault of the step's (a missing output, a link out, a file it made
  # unreadable) makes the job's failure the step's, as nixflow run has it.
  local k name path dir isdir qn err stepfault=0
  local -a faults=()
  for ((k = 0; k < ${#J_outputs[@]}; k += 2)); do
    name=${J_outputs[k]} path=${J_outputs[k + 1]}
    dir=$nf_run_dir/artifacts/$name
    rm -rf "$dir"
    if [[ ! -e $J_ws/$path && ! -L $J_ws/$path ]]; then
      nf_goquote "$name"
      qn=$nf_q
      nf_goquote "$path"
      faults+=("output $qn: path $nf_q does not exist in the workspace")
      stepfault=1
      continue
    fi
    if nf_outside "$path"; then
      nf_goquote "$name"
      qn=$nf_q
      nf_goquote "$path"
      faults+=("output $qn: $nf_q is or goes through a symbolic link that is absolute or leads outside the workspace")
      stepfault=1
      continue
    fi
    if [[ ! -f $J_ws/$path && ! -d $J_ws/$path ]]; then
      nf_goquote "$name"
      qn=$nf_q
      nf_goquote "$path"
      faults+=("output $qn: $nf_q is not a file or directory (FIFOs, sockets and devices are not saved)")
      stepfault=1
      continue
    fi
    # A symbolic link given as the output's path is followed (it leads
    # inside the workspace); links inside a directory stay links.
    isdir=0
    [[ -d $J_ws/$path ]] && isdir=1
    # A copy that fails (a full disk, a file the step made unreadable)
    # leaves nothing: no part of an artifact is taken for it.
    # FIFOs, sockets and devices in a directory are not saved, as under
    # nixflow run (cp -a copies them).
    if ! err=$({ mkdir -p "$dir" && LC_ALL=C cp -a -H "$J_ws/$path" "$dir/data" &&
      { ((!isdir)) || find "$dir/data" \( -type p -o -type s -o -type b -o -type c \) -exec rm -f -- {} +; } &&
      printf '%s\n%s\n%s\n' "$path" "$isdir" "$nf_job" >"$dir/meta"; } 2>&1); then
      chmod -R u+rwx "$dir" 2>/dev/null
      rm -rf "$dir"
      nf_goquote "$name"
      qn=$nf_q
      nf_goquote "$path"
      err=${err%$'\n'}
      faults+=("output $qn: save $nf_q: ${err##*$'\n'}")
      [[ $err != *"Permission denied"* ]] || stepfault=1
    fi
  done
  if ((${#faults[@]} > 0)) && [[ $J_status != cancelled && $J_status != failure ]]; then
    local joined
    printf -v joined '%s; ' "${faults[@]}"
    if ((stepfault)); then nf_job_result failure "${joined%; }" step; else nf_job_result failure "${joined%; }" executor; fi
  fi
}

# nf_step_holds K FAILED: the status function of a step's condition over
# the earlier steps of its job.
nf_step_holds() {
  local k=$1 failed=$2 cancelled=0 interrupted=0
  [[ -e $nf_state/aborted ]] && return 1
  [[ -e $nf_state/cancelled ]] && cancelled=1
  if ((J_cleanup)); then interrupted=0; else interrupted=$cancelled; fi
  case ${S_cond[k]} in
    always) return 0 ;;
    expr)
      local ok=0
      ((!failed && !interrupted)) && ! nf_expired && ok=1
      nf_expr_holds "${S_table[k]}" "$ok" "$((failed && !interrupted))" "$cancelled"
      ;;
    cancelled) ((cancelled)) ;;
    failure) ((failed && !interrupted)) ;;
    *) ((!failed && !interrupted)) && ! nf_expired ;;
  esac
}

nf_expired() {
  ((J_deadline > 0)) || return 1
  nf_now
  ((nf_t >= J_deadline))
}

nf_run_steps() {
  local k failed=0 fail_reason='' fail_domain=step cancelled=0 reason
  local -a S_infra=()
  for k in "${!S_name[@]}"; do
    nf_step=${S_name[k]}
    S_status[k]='' S_attempts[k]=0
    if ! nf_step_holds "$k" "$failed"; then
      if [[ -e $nf_state/aborted ]]; then
        reason="run aborted"
      elif [[ ${S_cond[k]} == cancelled ]]; then
        reason="the run was not cancelled"
      elif [[ ${S_cond[k]} == failure ]]; then
        reason="no earlier step failed"
      elif nf_expired; then
        reason="the job timed out"
      elif ((failed)); then
        reason="an earlier step failed"
      else
        reason="condition ${S_condstr[k]} is false"
      fi
      S_status[k]=skipped
      [[ ${S_cond[k]} == success ]] && nf_expired && J_timedout=1
      if ((!S_keep[k])) && { [[ -e $nf_state/aborted ]] || { ((!J_cleanup)) && [[ -e $nf_state/cancelled ]]; }; }; then
        S_status[k]=cancelled reason="run cancelled"
      fi
      S_reason[k]=$reason
      nf_step_record "$k" 0 0
      nf_emit step_end "$nf_job" "$nf_step" result="${S_status[k]}" reason="$reason"
      continue
    fi
    nf_run_step "$k"
    if [[ ${S_status[k]} == cancelled ]]; then
      cancelled=1
    elif [[ ${S_status[k]} == failure ]] && ((S_coe[k])); then
      # Allowed to fail, not to outlast the job: the job's timeout fails
      # the job, and its failure() steps run.
      if ((J_timedout && !failed)); then
        failed=1 fail_reason="job timed out after $J_timeout_str" fail_domain=step
      fi
    elif [[ ${S_status[k]} == failure ]] && ((!failed)); then
      failed=1
      nf_goquote "$nf_step"
      fail_reason="step $nf_q ${S_reason[k]}"
      # The job's fault more than the step's: said first.
      if [[ ${S_reason[k]} == "job timed out after $J_timeout_str"* ]]; then
        fail_reason="job timed out after $J_timeout_str in step $nf_q${S_reason[k]#"job timed out after $J_timeout_str"}"
      fi
      fail_domain=step
      ((${S_infra[k]:-0})) && fail_domain=executor
    fi
  done
  if ((failed)); then
    nf_job_result failure "$fail_reason" "$fail_domain"
  elif ((J_timedout)); then
    nf_job_result failure "job timed out after $J_timeout_str" step
  elif ((cancelled)) || [[ -e $nf_state/aborted ]] || { ((!J_cleanup)) && [[ -e $nf_state/cancelled ]]; }; then
    nf_job_result cancelled "run cancelled"
  else
    nf_job_result success ""
  fi
}

# nf_step_env K fills nf_env with the environment of step K.
nf_step_env() {
  local k=$1 key d front=''
  nf_env=()
  for key in "${!J_env[@]}"; do nf_env[$key]=${J_env[$key]}; done
  nf_step_env_"$nf_job_index"_"$k"
  for key in "${!J_jobenv[@]}"; do nf_env[$key]=${J_jobenv[$key]}; done
  nf_apply_overrides
  if [[ -n ${S_deps[k]} ]]; then
    while IFS='' read -r d; do front+=${front:+:}$d/bin; done <<<"${S_deps[k]}"
  fi
  for ((d = ${#J_path[@]} - 1; d >= 0; d--)); do front+=${front:+:}${J_path[d]}; done
  if [[ -n $front ]]; then
    local old=${nf_env[PATH]-${PATH:-}}
    nf_env[PATH]=$front${old:+:$old}
  fi
  nf_env[JOB_ENV]=$nf_ctl/env
  nf_env[JOB_PATH]=$nf_ctl/path
  nf_env[JOB_OUTPUT]=$nf_ctl/output
  nf_env[NIXFLOW_RUN_ID]=$nf_run_id
  nf_env[NIXFLOW_JOB]=$nf_job
  nf_env[NIXFLOW_STEP]=$nf_step
  nf_env[NIXFLOW_WORKSPACE]=$J_ws
  nf_compat_env
}

# nf_compat_env sets the variables of nixactions' runtime, unless the
# workflow declares them, as nixflow run does: WORKFLOW_NAME, WORKFLOW_ID
# (the run's id), WORKFLOW_SHORT_ID (the name cut to 15 bytes, then the
# random end of the run id) and JOB_DIR (the job's workspace).
nf_compat_env() {
  local LC_ALL=C short=${nf_name:0:15}
  while [[ $short == -* ]]; do short=${short#-}; done
  while [[ $short == *- ]]; do short=${short%-}; done
  [[ -n ${nf_env[WORKFLOW_NAME]+x} ]] || nf_env[WORKFLOW_NAME]=$nf_name
  [[ -n ${nf_env[WORKFLOW_ID]+x} ]] || nf_env[WORKFLOW_ID]=$nf_run_id
  [[ -n ${nf_env[WORKFLOW_SHORT_ID]+x} ]] || nf_env[WORKFLOW_SHORT_ID]=$short-${nf_run_id##*-}
  [[ -n ${nf_env[JOB_DIR]+x} ]] || nf_env[JOB_DIR]=$J_ws
}

# nf_step_deadline K: the deadline of an attempt of step K (sets nf_dl and
# nf_deadline_kind).
nf_step_deadline() {
  local k=$1 jd=0 sd=0
  nf_now
  if ((J_deadline > 0)) && ! { [[ ${S_cond[k]} != success ]] && ((nf_t >= J_deadline)); }; then
    jd=$J_deadline
  fi
  ((S_timeout_ms[k] > 0)) && sd=$((nf_t + S_timeout_ms[k]))
  nf_dl=$jd nf_deadline_kind=job
  if ((sd > 0 && (nf_dl == 0 || sd < nf_dl))); then nf_dl=$sd nf_deadline_kind=step; fi
}

nf_run_step() {
  local k=$1
  local interruptible=$J_interruptible attempt max=${S_max[k]} t0 dir code
  # A step whose condition can hold in a cancelled run goes on after the
  # first Ctrl-C: always(), cancelled() and the expressions of S_keep.
  if [[ ${S_cond[k]} == cancelled ]] || ((S_keep[k])); then interruptible=0; fi
  dir=$J_ws
  [[ -n ${S_workdir[k]} ]] && dir=$J_ws/${S_workdir[k]}
  nf_step_env "$k"
  nf_tail=$nf_ctl/tail.$k
  S_reason[k]=''
  if [[ -n ${S_condcmd[k]} ]]; then
    if nf_cannot_run "$dir"; then
      S_infra[k]=$nf_infra
      nf_step_end "$k" failure "condition could not run: $nf_err" 0
      return
    fi
    nf_step_deadline "$k"
    # A condition's output is the step's; its shell is a plain bash -c.
    nf_spawn stepcond "${S_condcmd[k]}" "$dir"
    nf_await "$interruptible" "$nf_dl"
    if [[ $nf_stop == timeout ]]; then
      [[ $nf_timeout_kind == job ]] && J_timedout=1
      nf_timeout_reason "$k"
      nf_step_end "$k" failure "condition $nf_reason" 0
      return
    elif [[ $nf_stop == cancel ]]; then
      nf_step_end "$k" cancelled "run cancelled" 0
      return
    elif ((nf_rc != 0)); then
      nf_goquote "${S_condcmd[k]}"
      nf_step_end "$k" skipped "condition $nf_q exited with status $nf_rc" 0
      return
    fi
  fi
  for ((attempt = 1; ; attempt++)); do
    S_attempts[k]=$attempt
    nf_emit step_start "$nf_job" "$nf_step" attempt="$attempt" attempts="$max"
    nf_step_deadline "$k"
    nf_now
    t0=$nf_t
    if nf_cannot_run "$dir"; then
      S_infra[k]=$nf_infra
      nf_step_end "$k" failure "could not run: $nf_err" 0 attempt="$attempt" attempts="$max"
      return
    fi
    nf_spawn step "${S_bash[k]}" "$dir"
    nf_await "$interruptible" "$nf_dl"
    nf_now
    local took=$((nf_t - t0))
    local status reason='' ctl_err=''
    nf_read_control || ctl_err=$nf_err
    if [[ -n $ctl_err ]]; then
      status=failure reason=$ctl_err
    elif [[ $nf_stop == cancel ]]; then
      status=cancelled reason="run cancelled"
    elif [[ $nf_stop == timeout ]]; then
      [[ $nf_timeout_kind == job ]] && J_timedout=1
      nf_timeout_reason "$k"
      status=failure reason=$nf_reason
    elif ((nf_rc != 0)); then
      code=$nf_rc
      ((nf_rc > 128 && nf_rc < 160)) && code="$nf_rc (signal $((nf_rc - 128)))"
      status=failure reason="failed with exit status $code"
    else
      status=success
    fi
    local final=0 expired=0
    nf_expired && expired=1
    if [[ $status != failure || -n $ctl_err ]] || ((attempt >= max || expired)); then
      final=1
      # An attempt that had attempts left but ended after the job's
      # deadline: the job timed out, as when the deadline strikes during
      # the wait that would follow.
      if [[ $status == failure && -z $ctl_err && ${S_cond[k]} == success ]] &&
        ((expired && attempt < max && !J_timedout)) && ! nf_should_stop "$interruptible"; then
        J_timedout=1 reason="job timed out after $J_timeout_str"
      fi
    elif nf_should_stop "$interruptible"; then
      # Cancelled once the attempt was over, with attempts left: the step
      # was waiting between attempts, and ends as cancelled.
      nf_step_end "$k" cancelled "run cancelled" "$took" exit="$nf_rc" attempt="$attempt" attempts="$max"
      return
    fi
    if [[ $status == failure ]] && ((final && attempt > 1)); then
      reason+=" (after $attempt attempts)"
    fi
    if ((final)) || [[ $status != failure ]]; then
      nf_step_end "$k" "$status" "$reason" "$took" exit="$nf_rc" attempt="$attempt" attempts="$max"
      return
    fi
    # The attempt's status: a wait that ends the step keeps it, as nixflow
    # run does (the wait's own sets nf_rc).
    local delay rc=$nf_rc
    nf_retry_delay "$k" "$attempt"
    delay=$nf_delay
    nf_fmt_ms "$delay"
    nf_emit step_retry "$nf_job" "$nf_step" attempt=$((attempt + 1)) attempts="$max" exit="$nf_rc" \
      msg="attempt $attempt/$max failed: $reason; retrying in $nf_f"
    if ! nf_wait_ms "$delay" "$interruptible"; then
      nf_step_end "$k" cancelled "run cancelled" 0 exit="$rc" attempt="$attempt"
      return
    fi
    # The job's deadline ends the wait of any step, a cleanup step's too
    # (one that runs after a job timeout has a single attempt).
    if nf_expired; then
      J_timedout=1
      local word=attempts
      ((attempt == 1)) && word=attempt
      nf_step_end "$k" failure "job timed out after $J_timeout_str (after $attempt $word)" 0 exit="$rc" attempt="$attempt"
      return
    fi
  done
}

# nf_cannot_run DIR: the step (or its condition) cannot start in DIR, for
# a reason nixflow run names too (sets nf_err, and nf_infra unless the
# step is at fault): its workspace is gone, its working directory is
# missing or no directory (the step's fault), or a variable of its
# environment is longer than the kernel takes (E2BIG), typically a value
# exported through JOB_ENV.
nf_cannot_run() {
  local dir=$1 k LC_ALL=C bash
  nf_infra=1
  if [[ ! -e $J_ws ]]; then
    nf_err="run: the workspace directory $J_ws no longer exists (deleted by a step, or by something else meanwhile)"
    return 0
  fi
  if [[ ! -e $dir ]]; then
    nf_err="run: no such working directory: $dir" nf_infra=0
    return 0
  elif [[ ! -d $dir ]]; then
    nf_err="run: no such working directory: $dir is not a directory" nf_infra=0
    return 0
  fi
  # No bash on the step's PATH (an env that sets PATH to a directory of
  # tools alone): nixflow run cannot start it either. (No subshell: a
  # process a step costs more than the look.)
  [[ ${nf_env[PATH]-$PATH} == "$PATH" ]] || local PATH=${nf_env[PATH]}
  if ! type -P bash >/dev/null; then
    nf_err='run: exec: "bash": executable file not found in $PATH'
    return 0
  fi
  for k in "${!nf_env[@]}"; do
    ((${#k} + ${#nf_env[$k]} + 1 < 131072)) && continue
    bash=$(PATH=${nf_env[PATH]-$PATH} && type -P bash) || bash=bash
    nf_err="run \"bash\": fork/exec $bash: argument list too long: variable $k is ${#nf_env[$k]} bytes long, more than the 131071 the kernel allows one variable (pass large values in a file)"
    return 0
  done
  return 1
}

nf_timeout_reason() {
  if [[ $nf_timeout_kind == job ]]; then
    nf_reason="job timed out after $J_timeout_str"
  else
    nf_reason="timed out after ${S_timeout_str[$1]}"
  fi
}

# nf_retry_delay K N: the wait after failed attempt N, shortened to the
# job's deadline.
nf_retry_delay() {
  local k=$1 n=$2
  local min=${S_min_ms[k]} max=${S_max_ms[k]} d i
  case ${S_backoff[k]} in
    linear) d=$((min * n)) ;;
    constant) d=$min ;;
    *)
      d=$min
      for ((i = 1; i < n && d < max; i++)); do d=$((d * 2)); done
      ;;
  esac
  ((d > max || d < 0)) && d=$max
  if ((J_deadline > 0)); then
    nf_now
    local left=$((J_deadline - nf_t))
    ((left < 0)) && left=0
    ((left < d)) && d=$left
  fi
  nf_delay=$d
}

# nf_step_record K ALLOWED MS EXIT: how step K ended, for result.json and
# the reports (--junit, the GitHub job summary): index, name, status,
# allowed, milliseconds, attempts, exit status, reason.
nf_step_record() {
  nf_mask "${S_reason[$1]:-}"
  printf '%s\0%s\0%s\0%s\0%s\0%s\0%s\0%s\0' "$1" "${S_name[$1]}" "${S_status[$1]}" "$2" "${3:-0}" "${S_attempts[$1]:-0}" \
    "${4:-0}" "$nf_m" >>"$nf_state/$nf_job_index.steps"
}

# nf_step_end K STATUS REASON MS records a step's end and prints it.
nf_step_end() {
  local k=$1
  # The values the step's readers learnt from ::add-mask:: lines (its
  # reason may hold one: an output's name in a JOB_OUTPUT error).
  nf_load_masks
  S_status[k]=$2 S_reason[k]=$3
  local allowed=0 a exit=0
  [[ $2 == failure ]] && ((S_coe[k])) && allowed=1
  for a in "${@:5}"; do [[ $a == exit=* ]] && exit=${a#exit=}; done
  nf_step_record "$k" "$allowed" "$4" "$exit"
  ((S_attempts[k] > J_attempts)) && J_attempts=${S_attempts[k]}
  J_steps_run=1
  if [[ $2 == failure ]] && [[ -s $nf_tail.stdout || -s $nf_tail.stderr ]]; then
    # The last lines of both streams, in the order they came.
    printf '%s\n' "$nf_step" >>"$nf_state/$nf_job_index.failed"
    sort -n "$nf_tail.stdout" "$nf_tail.stderr" 2>/dev/null | tail -n 20 | cut -f2- >"$nf_state/$nf_job_index.tail.$k"
  fi
  nf_emit step_end "$nf_job" "$nf_step" result="$2" reason="$3" allowed="$allowed" ms="$4" "${@:5}"
}

# nf_read_control reads what the step appended to JOB_ENV, JOB_PATH and
# JOB_OUTPUT; a file that no longer starts with what was read before was
# rewritten and is read whole.
nf_read_control() {
  local f data seen new line key nl off
  local -a errs=()
  # Every file is read, whatever another holds: what the step wrote is
  # its own, and a later step is not blamed for it.
  for f in env path output; do
    [[ -f $nf_ctl/$f ]] || continue
    local -n seenref=J_seen_$f
    seen=${seenref:-}
    # read stops at a NUL byte, which bash cannot hold, and succeeds only
    # then: the text after it is not read (nixflow run reads it), and the
    # NUL is told once.
    if IFS='' read -r -d '' data <"$nf_ctl/$f"; then
      unset -n seenref
      [[ -z ${J_nul[$f]:-} ]] || continue
      J_nul[$f]=1
      local -n seenref=J_seen_$f
      if [[ $data == "$seen"* ]]; then new=${data:${#seen}}; else new=$data seen=''; fi
      seenref=$data
      unset -n seenref
      nl=${seen//[!$'\n']/} line=${new//[!$'\n']/}
      errs+=("JOB_${f^^}: line $((${#nl} + ${#line} + 1)): holds a NUL byte, which no environment variable can carry")
      continue
    fi
    if [[ $data == "$seen"* ]]; then new=${data:${#seen}}; else new=$data seen=''; fi
    seenref=$data
    unset -n seenref
    [[ -n $new ]] || continue
    if [[ $f == path ]]; then
      while IFS='' read -r line; do
        line=${line#"${line%%[![:space:]]*}"}
        line=${line%"${line##*[![:space:]]}"}
        [[ -n $line ]] && J_path+=("$line")
      done <<<"$new"
      continue
    fi
    # Lines are numbered from the file's start.
    nl=${seen//[!$'\n']/}
    off=${#nl}
    local -A nf_pv=()
    local -a nf_pk=()
    if ! nf_parse_envfile "$new" "$off"; then
      errs+=("JOB_${f^^}: $nf_err")
      continue
    fi
    for key in "${nf_pk[@]}"; do
      if [[ $f != env ]]; then
        # Keys that differ only where the variable's name cannot (case,
        # punctuation) would reach dependent jobs as one variable.
        local other name clash=''
        nf_env_name "$nf_job" "$key"
        name=$nf_n
        for other in "${!J_outmap[@]}"; do
          nf_env_name "$nf_job" "$other"
          if [[ $other != "$key" && $nf_n == "$name" ]]; then clash=$other; fi
        done
        if [[ -n $clash ]]; then
          errs+=("JOB_OUTPUT: outputs \"$clash\" and \"$key\" would both be $name in dependent jobs: rename one")
          break
        fi
        J_outmap[$key]=${nf_pv[$key]}
        continue
      fi
      J_jobenv[$key]=${nf_pv[$key]}
      # A value exported under a secret's name is a secret too.
      if [[ ${nf_secret_name[$key]+x} && -n ${nf_pv[$key]} ]] && ! nf_masked "${nf_pv[$key]}"; then
        nf_add_mask "${nf_pv[$key]}" || nf_warn "" "secret $key is shorter than 4 characters and is not masked"
        printf '%s\n' "${nf_pv[$key]}" >>"$nf_tmp/masks"
      fi
    done
  done
  if ((${#errs[@]} > 0)); then
    printf -v nf_err '%s; ' "${errs[@]}"
    nf_err=${nf_err%; }
    return 1
  fi
}

# nf_job_finish writes the job's result for the scheduler and the summary.
nf_job_finish() {
  local i=$1 k dur=0 allowed=0
  nf_load_masks
  nf_now
  ((J_started)) && dur=$((nf_t - J_start))
  [[ $J_status == failure ]] && ((J_coe)) && allowed=1
  if [[ ${#J_outmap[@]} -gt 0 ]]; then
    for k in "${!J_outmap[@]}"; do printf '%s\0%s\0' "$k" "${J_outmap[$k]}"; done >"$nf_tmp/outputs/$i"
  fi
  # The workspace goes now, unless kept (an empty one goes at the end of
  # the run with the others); the control files go with the temporary
  # directory.
  if ((!nf_keep_ws)); then
    local -a left
    shopt -s nullglob dotglob
    left=("$J_ws"/*)
    shopt -u nullglob dotglob
    ((${#left[@]} == 0)) || rm -rf "$J_ws"
  fi
  nf_emit job_end "$nf_job" "" result="$J_status" reason="$J_reason" allowed="$allowed" ms="$dur"
  # One write: the scheduler reads the file once it is not empty.
  local start=0
  ((J_started)) && start=$J_start
  printf '%s\n%s\n%s\n%s\n%s\n%s\n%s\n' "$J_status" "$allowed" "$J_domain" "$dur" "$J_attempts" "$start" "$J_reason" >"$nf_state/$i.done"
}

# --- the run ---------------------------------------------------------------

nf_on_signal() {
  local name
  case $1 in
    INT) name=interrupt ;;
    TERM) name=terminated ;;
    HUP) name=hangup ;;
    QUIT) name=quit ;;
    LOST)
      # Output that cannot be written while the process that started the
      # script is gone (ssh host < script, and the connection dropped):
      # cancel, once; cleanup jobs still run. A reader that went away
      # (bash script | head) does not stop the run, as with nixflow run.
      # Once, and not again while it is being looked into: each reader
      # that finds its output gone says so.
      ((nf_lost || nf_lost_checking)) && return
      nf_lost_checking=1
      if ! nf_orphaned; then
        nf_lost_checking=0
        return
      fi
      nf_lost_checking=0
      nf_lost=1
      ((nf_signals == 0)) || return
      name='output lost'
      ;;
  esac
  # A stop signal within 200 ms of the first is the same stop (the
  # terminal closing sends SIGHUP twice, timeout(1) SIGTERM twice), as
  # with nixflow run. (nf_t is not touched: the trap may interrupt its
  # user.)
  local now
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    now=${EPOCHREALTIME/[.,]/}
    now=$((10#$now / 1000))
  else
    now=$(date +%s%3N)
  fi
  if ((nf_signals > 0 && now - nf_first_signal < 200)); then
    return
  fi
  nf_signals=$((nf_signals + 1))
  if ((nf_signals == 1)); then
    nf_first_signal=$now
    printf 'nixflow: %s: stopping running steps; cleanup jobs still run (interrupt again to skip them)\n' "$name" >&2
    : >"$nf_state/cancelled"
  else
    printf 'nixflow: %s again: killing running steps, skipping cleanup jobs, tearing down\n' "$name" >&2
    : >"$nf_state/aborted"
  fi
  local i
  for i in "${!nf_running[@]}"; do kill -USR1 "${nf_running[$i]}" 2>/dev/null || true; done
}

# nf_orphaned: a process the script was started under is gone (the
# script, or one of its callers, was adopted by another): its chain of
# parents is not the one it started with.
nf_orphaned() {
  # Its own chain: a trap may run it while another of its runs, or the
  # code it interrupted, uses nf_ancestors' variables.
  local now nf_chain nf_ppid
  # No bare `return` here: in a trap it would return the status of the
  # command the trap interrupted.
  if [[ -r /proc/$$/stat ]]; then
    nf_ancestors
    [[ $nf_chain != "$nf_chain0" ]] && return 0
    return 1
  fi
  now=$(ps -o ppid= -p "$$" 2>/dev/null) || return 1
  now=${now//[!0-9]/}
  [[ -n $now && $now != "$PPID" ]] && return 0
  return 1
}

# nf_ancestors sets nf_chain to the script's parents, nearest first, up to
# the first that /proc does not show (init, or outside a container).
nf_ancestors() {
  local pid=$$
  nf_chain=''
  while nf_ppid_of "$pid" && ((nf_ppid > 1)); do
    nf_chain+=" $nf_ppid"
    pid=$nf_ppid
  done
}

# nf_output_lost tells the script's main process, once from each process,
# that its standard output cannot be written any more.
nf_output_lost() {
  ((nf_lost_told)) && return 0
  nf_lost_told=1
  kill -USR2 "$$" 2>/dev/null || true
}

# nf_watch_parent: over `ssh host < script` without a terminal, a dropped
# connection sends no signal, and a quiet run writes nothing that could
# fail. So when a process the script was started under is gone while its
# output goes to a pipe or a socket, the run is cancelled as if its output
# were lost. Not when SIGHUP was ignored from the start (nohup), nor
# without /proc.
nf_watch_parent() {
  local main=$$ k v
  [[ -r /proc/$main/stat && -r /proc/$main/status ]] || return 0
  [[ -p /dev/stdout || -S /dev/stdout ]] || return 0
  while IFS=$'\t' read -r k v; do
    [[ $k == SigIgn: ]] || continue
    ((0x$v & 1)) && return 0
    break
  done <"/proc/$main/status"
  nf_start_of "$main" || return 0
  local start=$nf_start
  # Not a child of the script: see nf_watchdog.
  nf_watcher=$(
    (
      trap '' INT QUIT HUP
      while :; do
        nf_sleep_ms 500
        nf_start_of "$main" && [[ $nf_start == "$start" ]] || exit 0
        if nf_orphaned; then
          kill -USR2 "$main" 2>/dev/null
          exit 0
        fi
      done
    ) </dev/null >/dev/null 2>&1 &
    # Its start time with its pid: it may end long before the script
    # does (once it has told it), and its pid go to another process.
    nf_start_of "$!" && printf '%s %s\n' "$!" "$nf_start"
  )
}

# nf_watchdog: killed with SIGKILL, the script can stop nothing: its jobs,
# subshells of it, would run on, and start their next steps. So a
# watchdog, in a process group of its own and deaf to signals, looks every
# 200 ms whether the script is still its parent; once it is not (the
# script ended without nf_cleanup, which kills the watchdog), it kills
# what is left of the run (nf_sweep) and removes the temporary directory.
# It closes the script's output and lock, not the sleep fifo: nf_sweep
# finds the run's processes by it.
# It needs a /proc of the script's own PID namespace (one that shows the
# script's descriptors).
nf_watchdog() {
  local main=$$ start
  [[ /proc/$main/fd/$nf_sleep_fd -ef $nf_tmp/sleep ]] 2>/dev/null || return 0
  nf_start_of "$main" || return 0
  start=$nf_start
  # The watchdog is not a child of the script (started from a subshell
  # that ends at once), nor is the watcher: bash's wait -n for the jobs
  # waits for any child while bash counts a job as running, and under load,
  # after a dropped connection's cancel, a job that had ended was still
  # counted so: the script waited for good for a child that ends only
  # with it. With no such child, the wait finds none left and returns.
  nf_watchdog_pid=$(
    set -m
    (
      trap '' INT QUIT HUP TERM USR1 USR2 PIPE
      # Hold neither the caller's output nor the run's lock.
      exec 4>&-
      [[ -z ${nf_lock_fd:-} ]] || exec {nf_lock_fd}>&-
      while :; do
        nf_sleep_ms 200
        # The script gone, dead (a zombie) or another process under its
        # pid; a /proc that cannot be read now is no proof it is gone.
        nf_start_of "$main"
        case $? in
          0) [[ $nf_start == "$start" ]] || break ;;
          2) break ;;
          *) [[ -e /proc/$main ]] || break ;;
        esac
      done
      nf_sweep
      rm -rf "$nf_tmp"
    ) </dev/null >/dev/null 2>&1 &
    printf '%s\n' "$!"
  )
}

# nf_start_of PID sets nf_start to the start time of a live process (field
# 22 of its stat). Its status: 1, the stat cannot be read; 2, the process
# is dead (a zombie).
nf_start_of() {
  local nf_f
  nf_stat "$1" || return 1
  [[ ${nf_f[0]} != [ZX] ]] || return 2
  nf_start=${nf_f[19]-}
  [[ -n $nf_start ]]
}

# nf_sweep kills what is left of a run whose script ended without its
# jobs: every process but the caller that holds the run's sleep fifo
# (nf_sleep_fd, which every process the script started inherits: its
# jobs, their timers, readers and copies, the steps and what they start),
# a few passes, as one may fork meanwhile; then every process carrying a
# cookie of the run (nf_sweep_cookies: what closed its descriptors). A
# process outside the run (a pipeline peer of the script, a pid used
# again) never holds that fifo.
nf_sweep() {
  local f pid i found
  for ((i = 0, found = 1; i < 20 && found; i++)); do
    found=0
    for f in /proc/[0-9]*/fd/*; do
      [[ $f -ef $nf_tmp/sleep ]] 2>/dev/null || continue
      pid=${f#/proc/}
      pid=${pid%%/*}
      [[ $pid == "$BASHPID" ]] && continue
      kill -KILL "$pid" 2>/dev/null && found=1
    done
  done
  nf_sweep_cookies
}

# nf_sweep_cookies kills every process carrying a cookie of the run. A
# process between fork and exec shows no environment yet: a few passes
# more follow one that finds none.
nf_sweep_cookies() {
  local f pid i found
  for ((i = 0, found = 3; i < 50 && found > 0; i++)); do
    ((found--))
    while IFS='' read -r f; do
      pid=${f#/proc/}
      kill -KILL "${pid%/environ}" 2>/dev/null && found=3
    done < <(grep -lz -- "^NIXFLOW_COOKIE=${nf_run_id//./\\.}\\." /proc/[0-9]*/environ 2>/dev/null)
    nf_sleep_ms 10
  done
}

# nf_ppid_of PID sets nf_ppid to the parent of PID, from /proc.
nf_ppid_of() {
  local stat
  { IFS='' read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  stat=${stat#* }
  nf_ppid=${stat%% *}
}

# nf_collect reads the results of jobs that ended.
nf_collect() {
  local i rc
  for i in "${!nf_running[@]}"; do
    if [[ ! -s $nf_state/$i.done ]]; then
      kill -0 "${nf_running[$i]}" 2>/dev/null && continue
      # The job's process is gone without its result (killed from
      # outside): the job failed, rather than the run waiting for it
      # forever.
      wait "${nf_running[$i]}" 2>/dev/null
      rc=$?
      if [[ ! -s $nf_state/$i.done ]]; then
        printf 'failure\n0\nexecutor\n0\n0\n0\n%s\n' "the job's process ended (exit status $rc) without a result" >"$nf_state/$i.done"
        nf_emit job_end "${nf_jobs[i]}" "" result=failure reason="the job's process ended (exit status $rc) without a result"
      fi
    fi
    wait "${nf_running[$i]}" 2>/dev/null
    unset "nf_running[$i]"
    nf_read_result "$i"
  done
}

nf_read_result() {
  local i=$1
  {
    IFS='' read -r "nf_res_status[$i]"
    IFS='' read -r "nf_res_allowed[$i]"
    IFS='' read -r "nf_res_domain[$i]"
    IFS='' read -r "nf_res_ms[$i]"
    IFS='' read -r "nf_res_attempts[$i]"
    IFS='' read -r "nf_res_start[$i]"
    IFS='' read -r "nf_res_reason[$i]"
  } <"$nf_state/$i.done"
  nf_mark_done "$i"
}

# nf_mark_done INDEX: the job has finished (or will not run); the jobs
# that needed only jobs now finished become ready (nf_ready, keyed by
# their place in nf_job_order): the scheduler looks at those alone, not
# at every job not yet started.
nf_mark_done() {
  local d l=${nf_job_level[$1]}
  nf_done[$1]=1
  nf_level_left[l]=$((nf_level_left[l] - 1))
  for d in ${nf_dependents[$1]:-}; do
    nf_unmet[d]=$((nf_unmet[d] - 1))
    ((nf_unmet[d] > 0)) || nf_ready[nf_pos[d]]=$d
  done
}

# nf_visit INDEX: a job whose needs have all finished. A job that does not
# run ends at once; the others start in the background.
nf_visit() {
  local i=$1
  if ! nf_status_holds "$i"; then
    nf_res_status[i]=$nf_hold_status nf_res_allowed[i]=0 nf_res_domain[i]='' nf_res_ms[i]=0 nf_res_attempts[i]=0
    nf_res_reason[i]=$nf_hold_reason
    nf_mark_done "$i"
    nf_emit job_end "${nf_jobs[i]}" "" result="$nf_hold_status" reason="$nf_hold_reason"
    return
  fi
  nf_job_index=$i
  nf_job "$i" &
  nf_running[i]=$!
}

nf_schedule() {
  local i n p progress level=0
  # Which jobs need each job, how many of its needs each waits for, and
  # the ready ones by their place in nf_job_order (ascending indices
  # come first in "${!nf_ready[@]}").
  # With --schedule levels, how many jobs of each level are not done.
  declare -ga nf_dependents=() nf_unmet=() nf_pos=() nf_ready=() nf_level_left=()
  for p in "${!nf_job_order[@]}"; do nf_pos[nf_job_order[p]]=$p; done
  for i in "${!nf_jobs[@]}"; do
    p=${nf_job_level[i]}
    nf_level_left[p]=$((${nf_level_left[p]:-0} + 1))
    nf_unmet[i]=0
    for n in ${nf_job_needs[i]}; do
      nf_dependents[n]+=" $i"
      nf_unmet[i]=$((nf_unmet[i] + 1))
    done
    ((nf_unmet[i] > 0)) || nf_ready[nf_pos[i]]=$i
  done
  while :; do
    progress=1
    while ((progress)); do
      progress=0
      for p in "${!nf_ready[@]}"; do
        i=${nf_ready[p]}
        if ((nf_levels_mode)); then
          # A level starts once every job of the levels before it is done.
          while ((level < nf_levels && ${nf_level_left[level]:-0} == 0)); do level=$((level + 1)); done
          ((nf_job_level[i] <= level)) || continue
        fi
        if ((nf_max_parallel > 0 && ${#nf_running[@]} >= nf_max_parallel)); then
          break
        fi
        unset "nf_ready[p]"
        nf_visit "$i"
        progress=1
      done
    done
    ((${#nf_running[@]} > 0)) || break
    # For the jobs only (bash 5.1 on): a job whose end a trap's commands
    # took note of is not waited for again (wait returns at once), where
    # a plain wait -n would wait for the next of any job. (The watcher and
    # the watchdog, which never end, are not children: see nf_watchdog.)
    if ((nf_wait_pids)); then
      wait -n "${nf_running[@]}" 2>/dev/null
    else
      wait -n 2>/dev/null
    fi
    nf_collect
  done
}

# nf_write_groups replays, at the end of the run, each job's log in a
# collapsible section of the CI's own syntax (nf_groups): the live output
# interleaves jobs that ran at once. A failed job's section is open
# (Buildkite) or annotated (GitHub).
nf_write_groups() {
  local LC_ALL=C
  local i job title failed id line ts r
  for i in "${!nf_jobs[@]}"; do
    job=${nf_jobs[i]}
    title="$job (${nf_res_status[i]})"
    failed=0
    if [[ ${nf_res_status[i]} == failure ]]; then
      if ((nf_res_allowed[i])); then title="$job (failed, allowed)"; else failed=1; fi
    fi
    id=nixflow_${job//[!a-zA-Z0-9_.-]/_}
    case $nf_groups in
      github) printf '::group::%s\n' "$title" ;;
      gitlab)
        printf -v ts '%(%s)T' -1
        printf '\e[0Ksection_start:%s:%s[collapsed=true]\r\e[0K%s\n' "$ts" "$id" "$title"
        ;;
      buildkite) if ((failed)); then printf '+++ %s\n' "$title"; else printf -- '--- %s\n' "$title"; fi ;;
    esac
    if [[ -f $nf_run_dir/logs/$job.log ]]; then
      while IFS='' read -r line || [[ -n $line ]]; do printf '%s\n' "$line"; done <"$nf_run_dir/logs/$job.log"
    else
      printf '(no log: the job did not run)\n'
    fi
    case $nf_groups in
      github)
        printf '::endgroup::\n'
        if ((failed)); then
          nf_mask "${nf_res_reason[i]}"
          r=$nf_m
          r=${r//%/%25} r=${r//$'\r'/%0D} r=${r//$'\n'/%0A} r=${r//:/%3A} r=${r//,/%2C}
          job=${job//%/%25} job=${job//$'\r'/%0D} job=${job//$'\n'/%0A} job=${job//:/%3A} job=${job//,/%2C}
          printf '::error title=nixflow job %s failed::%s\n' "$job" "$r"
        fi
        ;;
      gitlab)
        printf -v ts '%(%s)T' -1
        printf '\e[0Ksection_end:%s:%s\r\e[0K\n' "$ts" "$id"
        ;;
    esac
  done
}

# nf_reports writes the reports CI systems read, as nixflow run does:
# --junit, and on GitHub Actions the job summary ($GITHUB_STEP_SUMMARY).
nf_reports() {
  local i
  nf_now
  nf_run_ms=$((nf_t - nf_run_start))
  # bash's word for each line it could not write is not said: the
  # messages below say it once, with its reason.
  if [[ -n $nf_junit ]] && ! nf_write_report "$nf_junit" nf_junit_write; then
    printf 'error: write the JUnit report: %s\n' "$nf_why" >&2
    nf_exit=3
  fi
  if [[ ${GITHUB_ACTIONS:-} == true && -n ${GITHUB_STEP_SUMMARY:-} ]]; then
    local doc
    if ! doc=$(nf_gh_summary 2>/dev/null && printf x) || [[ $doc != *x ]]; then
      printf 'warning: GitHub step summary not written: the run'"'"'s record is incomplete (a full disk?)\n' >&2
    elif ! nf_try nf_put_out "$GITHUB_STEP_SUMMARY" "${doc%x}" append; then
      printf 'warning: GitHub step summary not written: %s\n' "$nf_why" >&2
    fi
  fi
}

# nf_put FILE TEXT writes TEXT to FILE.
nf_put() { printf '%s' "$2" >"$1"; }

# nf_put_out FILE TEXT [append] writes (or appends) TEXT to FILE as
# nixflow run writes an output file in place: /dev/stdout, /dev/stderr,
# /dev/fd/N and /proc/self/fd/N through the descriptor this script has
# (opened anew, a regular file would start over from its beginning;
# under nf_try, standard output and error are nf_o and nf_e), anything
# else (a device, a pipe, a link) opened by its name.
nf_put_out() {
  local to=''
  case $1 in
    /dev/stdout) to=1 ;;
    /dev/stderr) to=2 ;;
    /dev/fd/* | /proc/self/fd/*) to=${1##*/} ;;
  esac
  if [[ $to =~ ^[0-9]+$ ]]; then
    ((to == 1)) && to=${nf_o:-1}
    ((to == 2)) && to=${nf_e:-2}
    printf '%s' "$2" >&"$to"
  elif [[ ${3:-} == append ]]; then
    printf '%s' "$2" >>"$1"
  else
    printf '%s' "$2" >"$1"
  fi
}

# nf_write_report FILE FUNC writes what FUNC prints to FILE as nixflow run
# writes its reports: a file whole or not at all (a new file beside it,
# renamed over it: a full disk leaves the report of an earlier run as it
# was, not half of this one's), with the mode of the file it replaces or
# else 0644 as the umask allows; in place where FILE is a device, a pipe
# or a link (/dev/stdout: this script's own standard output). The report
# is made whole first, and written at once: one write tells whether all
# of it was. On failure nf_why says why (see nf_try).
nf_write_report() {
  local f=$1 doc tmp mode
  if ! doc=$("$2" 2>/dev/null && printf x) || [[ $doc != *x ]]; then
    nf_why="the run's record is incomplete (a full disk?)"
    return 1
  fi
  doc=${doc%x}
  if [[ -e $f && ! -f $f || -L $f ]]; then
    nf_try nf_put_out "$f" "$doc" && return 0
    nf_why="write $f: ${nf_why#*: }"
    return 1
  fi
  if ! tmp=$(LC_ALL=C mktemp "$(dirname -- "$f")/.${f##*/}.XXXXXXXX" 2>&1); then
    tmp=${tmp%%$'\n'*}
    tmp=${tmp##*: }
    nf_why="write $f: ${tmp,}"
    return 1
  fi
  if [[ -f $f ]]; then
    mode=$(stat -c %a -- "$f" 2>/dev/null || stat -f %Lp -- "$f" 2>/dev/null)
  else
    printf -v mode '%o' $((0644 & ~$(umask)))
  fi
  if nf_try nf_put "$tmp" "$doc"; then
    chmod -- "${mode:-644}" "$tmp" 2>/dev/null
    nf_try mv -f -- "$tmp" "$f" && return 0
  fi
  rm -f -- "$tmp"
  # Named as the user named it, not by the temporary file beside it.
  nf_why="write $f: ${nf_why#*: }"
  return 1
}

# nf_load_steps reads each job's step records (see nf_step_record), once
# the jobs are over, for result.json and the reports.
nf_load_steps() {
  local i
  for i in "${!nf_jobs[@]}"; do
    declare -ga "nf_steps_$i=()"
    [[ -f $nf_state/$i.steps ]] || continue
    mapfile -d '' -t "nf_steps_$i" <"$nf_state/$i.steps"
  done
}

# nf_job_steps JOB sets st (the caller's) to the step records of JOB:
# eight fields a step (see nf_step_record).
nf_job_steps() {
  local -n src=nf_steps_$1
  st=("${src[@]}")
}

# nf_xml_attr TEXT sets nf_x to TEXT escaped for an XML attribute, as Go's
# encoding/xml escapes it.
nf_xml_attr() {
  # Quoted replacements: bash 5.2 would put the match where an unquoted &
  # stands.
  nf_x=${1//&/"&amp;"}
  nf_x=${nf_x//</"&lt;"} nf_x=${nf_x//>/"&gt;"} nf_x=${nf_x//\"/"&#34;"} nf_x=${nf_x//\'/"&#39;"}
  nf_x=${nf_x//$'\t'/"&#x9;"} nf_x=${nf_x//$'\n'/"&#xA;"} nf_x=${nf_x//$'\r'/"&#xD;"}
}

# nf_xml_masked TEXT sets nf_xt to TEXT masked, as XML can hold it
# (nf_xml_text), and masked again: removing the control sequences a step
# printed inside a secret would put the secret back together.
nf_xml_masked() {
  nf_mask "$1"
  nf_xml_text "$nf_m"
  nf_mask "$nf_xt"
  nf_xt=$nf_m
}

# nf_xml_text TEXT sets nf_xt to TEXT as XML 1.0 can hold it, CDATA too,
# as nixflow run writes it: terminal control sequences (colours) removed,
# every other control character, and every byte that is not UTF-8,
# replaced by U+FFFD.
nf_xml_text() {
  local s=$1 LC_ALL=C
  if [[ $s == *[$'\001'-$'\010'$'\013'$'\014'$'\016'-$'\037']* ]]; then
    local re=$'\e''\[[0-?]*[ -/]*[@-~]'
    while [[ $s =~ $re ]]; do s=${s/"${BASH_REMATCH[0]}"/}; done
    s=${s//[$'\001'-$'\010'$'\013'$'\014'$'\016'-$'\037']/$'\xef\xbf\xbd'}
  fi
  if nf_has_high "$s"; then
    nf_utf8_fix "$s" $'\xef\xbf\xbd'
    # U+FFFE and U+FFFF are UTF-8, and no XML character.
    s=${nf_u//$'\xef\xbf\xbe'/$'\xef\xbf\xbd'}
    s=${s//$'\xef\xbf\xbf'/$'\xef\xbf\xbd'}
  fi
  nf_xt=$s
}

# nf_secs3 MS sets nf_f to MS as seconds with three decimals.
nf_secs3() {
  printf -v nf_f '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

# nf_junit_write writes the run's result as JUnit XML: one testsuite, one
# testcase per job, its steps as properties; a failure holds the job's
# reason and the last lines of its failed steps; every text masked.
nf_junit_write() {
  local i k name v fails=0 skips=0 cases='' c props tail line q ts nf_xt
  local -a st=()
  for i in "${!nf_jobs[@]}"; do
    nf_xml_attr "${nf_jobs[i]}"
    name=$nf_x
    nf_xml_attr "$nf_name"
    nf_secs3 "${nf_res_ms[i]}"
    c="    <testcase name=\"$name\" classname=\"$nf_x\" time=\"$nf_f\">"
    props='' tail=''
    nf_job_steps "$i"
    for ((k = 0; k + 7 < ${#st[@]}; k += 8)); do
      v=${st[k + 2]}
      ((st[k + 3])) && v+=' (allowed)'
      if ((st[k + 4] > 0)); then nf_round_ms "${st[k + 4]}"; v+=" in $nf_f"; fi
      ((st[k + 5] > 1)) && v+=", ${st[k + 5]} attempts"
      nf_xml_masked "$v"
      nf_xml_attr "$nf_xt"
      v=$nf_x
      nf_xml_attr "step ${st[k + 1]}"
      props+=$'\n'"        <property name=\"$nf_x\" value=\"$v\"></property>"
      if [[ ${st[k + 2]} == failure && -s $nf_state/$i.tail.${st[k]} ]]; then
        tail+="last lines of ${st[k + 1]}:"$'\n'
        while IFS='' read -r line; do
          nf_xml_masked "$line"
          tail+=$nf_xt$'\n'
        done <"$nf_state/$i.tail.${st[k]}"
      fi
    done
    # Where it ran, as result.json says (nixflow run's "where").
    ((${nf_res_start[i]:-0} > 0)) && props+=$'\n'"        <property name=\"where\" value=\"local\"></property>"
    [[ -n $props ]] && c+=$'\n'"      <properties>$props"$'\n'"      </properties>"
    nf_xml_masked "${nf_res_reason[i]}"
    nf_xml_attr "$nf_xt"
    case ${nf_res_status[i]} in
      failure)
        if ((nf_res_allowed[i])); then
          nf_xml_masked "${nf_res_reason[i]}"
          q="failed (allowed): $nf_xt"
          c+=$'\n'"      <system-out><![CDATA[${q//]]>/]]]]><![CDATA[>}]]></system-out>"
        else
          fails=$((fails + 1))
          q=''
          [[ -n $tail ]] && q="<![CDATA[${tail//]]>/]]]]><![CDATA[>}]]>"
          c+=$'\n'"      <failure message=\"$nf_x\" type=\"${nf_res_domain[i]}\">$q</failure>"
        fi
        ;;
      skipped | cancelled)
        skips=$((skips + 1))
        nf_xml_masked "${nf_res_status[i]}: ${nf_res_reason[i]}"
        nf_xml_attr "$nf_xt"
        c+=$'\n'"      <skipped message=\"$nf_x\"></skipped>"
        ;;
    esac
    if [[ $c == *$'\n'* ]]; then c+=$'\n'"    </testcase>"; else c+="</testcase>"; fi
    cases+=$'\n'$c
  done
  nf_xml_attr "$nf_name"
  nf_secs3 "$nf_run_ms"
  TZ=UTC0 printf -v ts '%(%Y-%m-%dT%H:%M:%SZ)T' $((nf_run_start / 1000))
  printf '<?xml version="1.0" encoding="UTF-8"?>\n'
  printf '<testsuites name="%s" tests="%d" failures="%d" skipped="%d" time="%s">\n' "$nf_x" "${#nf_jobs[@]}" "$fails" "$skips" "$nf_f"
  printf '  <testsuite name="%s" tests="%d" failures="%d" skipped="%d" time="%s" timestamp="%s">%s\n' \
    "$nf_x" "${#nf_jobs[@]}" "$fails" "$skips" "$nf_f" "$ts" "$cases"
  printf '  </testsuite>\n</testsuites>\n'
}

# nf_md TEXT sets nf_x to TEXT kept from breaking a Markdown table.
nf_md() {
  nf_x=${1//|/\\|}
  nf_x=${nf_x//</"&lt;"} nf_x=${nf_x//>/"&gt;"}
}

# nf_gh_summary writes the run's result for GitHub Actions' job summary
# (Markdown): a table of jobs, then the last lines of each failed step.
nf_gh_summary() {
  local i k verdict=succeeded icon result dur line
  local -a st=()
  ((nf_exit == 130)) && verdict='was interrupted'
  ((nf_exit != 0 && nf_exit != 130)) && verdict=failed
  nf_md "$nf_name"
  nf_round_ms "$nf_run_ms"
  printf '### nixflow: %s %s in %s\n\n| Job | Result | Duration |\n| --- | --- | --- |\n' "$nf_x" "$verdict" "$nf_f"
  for i in "${!nf_jobs[@]}"; do
    icon='✅' result=${nf_res_status[i]}
    case $result in
      failure) if ((nf_res_allowed[i])); then icon='⚠️' result='failed (allowed)'; else icon='❌'; fi ;;
      skipped) icon='⏭️' ;;
      cancelled) icon='🚫' ;;
    esac
    nf_job_steps "$i"
    dur=-
    if ((nf_res_ms[i] > 0 || ${#st[@]} > 0)); then nf_round_ms "${nf_res_ms[i]}"; dur=$nf_f; fi
    nf_md "${nf_jobs[i]}"
    printf '| %s | %s %s | %s |\n' "$nf_x" "$icon" "$result" "$dur"
  done
  for i in "${!nf_jobs[@]}"; do
    nf_job_steps "$i"
    for ((k = 0; k + 7 < ${#st[@]}; k += 8)); do
      [[ ${st[k + 2]} == failure && -s $nf_state/$i.tail.${st[k]} ]] || continue
      nf_md "${nf_jobs[i]}"
      line=$nf_x
      nf_md "${st[k + 1]}"
      printf '\n<details open><summary>%s › %s: last lines</summary>\n\n```text\n' "$line" "$nf_x"
      while IFS='' read -r line; do
        nf_mask "$line"
        printf '%s\n' "${nf_m//\`\`\`/\` \` \`}"
      done <"$nf_state/$i.tail.${st[k]}"
      printf '```\n\n</details>\n'
    done
  done
  printf '\n'
}

# nf_summary prints the table of jobs, the failures and one last line.
nf_summary() {
  nf_load_masks
  exec 3>&1
  [[ $nf_format == json ]] && exec 3>&4
  # bash's word for each console line it could not write is not said
  # (see nf_reader); what goes wrong recording the run is (nf_err).
  local nf_err
  exec {nf_err}>&2 2>/dev/null
  local i w1=3 w2=6 w3=8 result dur att failed=0 allowed=0 skipped=0 cancelled=0 infra=0
  local -a col2 col3 col4
  local -A domains=()
  for i in "${!nf_jobs[@]}"; do
    result=${nf_res_status[i]}
    if [[ $result == failure ]] && ((nf_res_allowed[i])); then
      result='failed (allowed)'
    elif [[ $result == failure && -n ${nf_res_domain[i]} ]]; then
      result="failure (${nf_res_domain[i]})"
    fi
    dur=-
    if ((nf_res_ms[i] > 0)); then nf_round_ms "${nf_res_ms[i]}"; dur=$nf_f; fi
    att=-
    ((nf_res_attempts[i] > 0)) && att=${nf_res_attempts[i]}
    col2[i]=$result col3[i]=$dur col4[i]=$att
    ((${#nf_jobs[i]} > w1)) && w1=${#nf_jobs[i]}
    ((${#result} > w2)) && w2=${#result}
    ((${#dur} > w3)) && w3=${#dur}
  done
  printf '\nJOB%*sRESULT%*sDURATION%*sATTEMPTS\n' $((w1 - 3 + 2)) '' $((w2 - 6 + 2)) '' $((w3 - 8 + 2)) ''
  for i in "${!nf_jobs[@]}"; do
    printf '%-*s%-*s%-*s%s\n' $((w1 + 2)) "${nf_jobs[i]}" $((w2 + 2)) "${col2[i]}" $((w3 + 2)) "${col3[i]}" "${col4[i]}"
  done
  local step k
  for i in "${!nf_jobs[@]}"; do
    case ${nf_res_status[i]} in
      failure)
        if ((nf_res_allowed[i])); then
          allowed=$((allowed + 1))
        else
          failed=$((failed + 1))
          domains[${nf_res_domain[i]}]=1
          [[ ${nf_res_domain[i]} == executor || ${nf_res_domain[i]} == build ]] && infra=1
        fi
        ;;
      skipped) skipped=$((skipped + 1)) ;;
      cancelled) cancelled=$((cancelled + 1)) ;;
    esac
    [[ ${nf_res_status[i]} == failure ]] || continue
    if [[ -n ${nf_res_reason[i]} ]]; then
      nf_mask "${nf_res_reason[i]}"
      printf '\n✗ %s: %s\n' "${nf_jobs[i]}" "$nf_m"
    fi
    [[ -f $nf_state/$i.failed ]] || continue
    nf_job_index=$i
    nf_job_"$i"
    for k in "${!S_name[@]}"; do
      [[ -f $nf_state/$i.tail.$k ]] || continue
      printf '  last lines of %s › %s:\n' "${nf_jobs[i]}" "${S_name[k]}"
      while IFS='' read -r step; do
        nf_mask "$step"
        printf '  │ %s\n' "$nf_m"
      done <"$nf_state/$i.tail.$k"
    done
  done
  local parts=() status=succeeded
  if ((${#nf_errors[@]} > 0)); then
    printf '\n'
    for step in "${nf_errors[@]}"; do
      nf_mask "$step"
      printf '✗ %s\n' "$nf_m"
    done
    domains[environment]=1
  fi
  ((failed == 1)) && parts+=("1 job failed")
  ((failed > 1)) && parts+=("$failed jobs failed")
  ((allowed == 1)) && parts+=("1 allowed failure")
  ((allowed > 1)) && parts+=("$allowed allowed failures")
  ((skipped > 0)) && parts+=("$skipped skipped")
  ((cancelled > 0)) && parts+=("$cancelled cancelled")
  nf_exit=0
  if [[ -e $nf_state/cancelled ]]; then
    status=interrupted nf_exit=130
  elif ((failed > 0 || ${#nf_errors[@]} > 0)); then
    local ds=() d
    for d in environment build executor step; do [[ -n ${domains[$d]:-} ]] && ds+=("$d"); done
    status=failed
    if ((${#ds[@]} > 0)); then
      local IFS=,
      status+=" (${ds[*]}"
      unset IFS
      status=${status//,/, }" failure)"
    fi
    nf_exit=1
    ((infra)) && nf_exit=3
  fi
  nf_now
  local end_result=success end_reason=''
  if ((nf_exit == 130)); then end_result=cancelled; elif ((nf_exit != 0)); then end_result=failure; fi
  if ((${#nf_errors[@]} > 0)); then
    local IFS=$'\n'
    end_reason="${nf_errors[*]}"
    unset IFS
  fi
  nf_emit run_end "" "" result="$end_result" reason="$end_reason" ms=$((nf_t - nf_run_start)) >&3 2>&"$nf_err"
  nf_write_result $((nf_t - nf_run_start)) 2>&"$nf_err"
  nf_round_ms $((nf_t - nf_run_start))
  local line="run $nf_run_id $status in $nf_f"
  if ((${#parts[@]} > 0)); then
    local joined
    printf -v joined '%s, ' "${parts[@]}"
    line+=": ${joined%, }"
  fi
  printf '\n%s\n' "$line"
  if [[ ${NIXFLOW_KEEP:-1} == 0 ]]; then
    :
  elif ((nf_exit != 0)); then
    printf 'logs: %s/logs\n' "$nf_run_dir"
  else
    printf 'run directory: %s\n' "$nf_run_dir"
  fi
  exec 2>&"$nf_err" {nf_err}>&-
}

# nf_read_exported DIR reads the artifacts an export put in DIR (the
# list .nixflow-artifacts) into nf_exported: those an export replaces.
# Anything else there is the user's, and stays as it is.
nf_read_exported() {
  local line
  declare -gA nf_exported=()
  [[ -e $1/.nixflow-artifacts ]] || return 0
  while IFS='' read -r line || [[ -n $line ]]; do
    [[ -z $line || $line == '#'* ]] || nf_exported[$line]=1
  done <"$1/.nixflow-artifacts"
}

# nf_not_replaceable DIR NAME fails, saying why, unless DIR/NAME is
# absent or an export put it there.
nf_not_replaceable() {
  if [[ ! -e $1/$2 && ! -L $1/$2 ]] || [[ -n ${nf_exported[$2]:-} ]]; then return 1; fi
  printf '%s/%s exists, and no run exported an artifact there: nixflow replaces only what it exported (move it, or choose another directory)' "$1" "$2"
}

# nf_remove_tree DIR removes DIR, also where its directories lack
# permissions.
nf_remove_tree() {
  rm -rf -- "$1" 2>/dev/null && return 0
  find "$1" -type d -exec chmod u+rwx {} + 2>/dev/null
  rm -rf -- "$1"
}

# nf_export_one DIR NAME ARTIFACT copies an artifact beside its place,
# then replaces what an earlier export left there with it.
nf_export_one() {
  local dir=$1 name=$2 a=$3 staging meta_path meta_dir rc=0
  { IFS='' read -r meta_path; IFS='' read -r meta_dir; } <"$a/meta"
  staging=$(mktemp -d "$dir/.nixflow-export-XXXXXX") || return
  mkdir -p "$staging/$name"
  if ((meta_dir)); then
    cp -a "$a/data/." "$staging/$name/" || rc=$?
  else
    cp -a "$a/data" "$staging/$name/${meta_path##*/}" || rc=$?
  fi
  if ((rc == 0)) && [[ -e $dir/$name || -L $dir/$name ]] && ! nf_remove_tree "$dir/$name"; then
    printf 'replace the earlier export: cannot remove %s\n' "$dir/$name"
    rc=1
  fi
  if ((rc == 0)); then mv "$staging/$name" "$dir/$name" || rc=$?; fi
  nf_remove_tree "$staging"
  return "$rc"
}

# nf_export_artifacts DIR copies every artifact of the run to DIR/<name>
# (a directory's contents in it, a file in it under its own name). An
# artifact that cannot be exported does not stop the others; each that
# failed is named, and the run exits 3.
nf_export_artifacts() {
  local dir=${1%/} n=0 a name err
  local -a faults=()
  [[ -n $dir ]] || dir=/
  nf_read_exported "$dir"
  for a in "$nf_run_dir"/artifacts/*/; do
    [[ -f $a/meta ]] || continue
    name=${a%/}
    name=${name##*/}
    if err=$(nf_not_replaceable "$dir" "$name") || ! err=$(nf_export_one "$dir" "$name" "$a" 2>&1); then
      err=${err%$'\n'}
      faults+=("export artifact \"$name\": ${err//$'\n'/; }")
      continue
    fi
    nf_exported[$name]=1
    n=$((n + 1))
  done
  if ((n > 0)); then
    if ! {
      printf '# Artifacts nixflow exported here: the next export replaces these, and nothing else.\n'
      printf '%s\n' "${!nf_exported[@]}" | LC_ALL=C sort
    } >"$dir/.nixflow-artifacts.new" || ! mv "$dir/.nixflow-artifacts.new" "$dir/.nixflow-artifacts"; then
      faults+=("export artifacts: cannot write $dir/.nixflow-artifacts")
    fi
  fi
  if ((n == 1)); then
    printf 'artifacts: 1 artifact exported to %s\n' "$1" 2>/dev/null
  else
    printf 'artifacts: %d artifacts exported to %s\n' "$n" "$1" 2>/dev/null
  fi
  if ((${#faults[@]} > 0)); then
    printf 'error: %s\n' "${faults[@]}" >&2
    nf_exit=3
  fi
}

# nf_check_artifacts_dir DIR makes sure, before anything runs, that
# --artifacts-dir can be written (finding out after an hour of building is
# too late); it creates the directory.
nf_check_artifacts_dir() {
  local dir=$1 p='' part rest made=''
  rest=${dir%/}
  [[ $rest == /* ]] && rest=${rest#/} p=/
  # A part of the path that is there but is no directory, as mkdir -p
  # would stumble on it, named as nixflow run names it.
  while [[ -n $rest ]]; do
    part=${rest%%/*}
    [[ $rest == */* ]] && rest=${rest#*/} || rest=''
    [[ -n $part ]] || continue
    p+=$part
    if [[ -e $p && ! -d $p ]]; then
      nf_die_usage "--artifacts-dir: mkdir $p: not a directory"
    fi
    [[ -e $p || -L $p ]] || { made=$p && break; }
    p+=/
  done
  # What it makes goes again when the check fails: a refused run leaves
  # nothing behind.
  if ! mkdir -p -- "$dir" 2>/dev/null || ! : 2>/dev/null >"$dir/.nixflow-check"; then
    [[ -z $made ]] || rm -rf -- "$made"
    nf_die_usage "--artifacts-dir $dir: cannot write there"
  fi
  rm -f -- "$dir/.nixflow-check"
  # What it made goes again if the run is refused later (nf_main).
  nf_made_artifacts_dir=$made
  # Exporting will replace nothing but what an earlier export put there.
  local name err bad=0
  dir=${dir%/}
  [[ -n $dir ]] || dir=/
  nf_read_exported "$dir"
  for name in "${nf_artifacts[@]}"; do
    if err=$(nf_not_replaceable "$dir" "$name"); then
      printf 'error: --artifacts-dir: %s\n' "$err" >&2
      bad=1
    fi
  done
  ((bad == 0)) || { [[ -z $made ]] || rm -rf -- "$made"; exit 2; }
}

# nf_check_output_file FLAG PATH makes sure, before anything runs, that a
# report can be written at PATH when the run ends.
nf_check_output_file() {
  local dir
  [[ ! -d $2 ]] || nf_die_usage "$1 $2: is a directory"
  # A device or a pipe (/dev/null, /dev/stdout) is written in place.
  if [[ -e $2 && ! -f $2 ]]; then return 0; fi
  dir=$(dirname -- "$2")
  [[ -d $dir ]] || nf_die_usage "$1 $2: no directory $dir"
  if ! : 2>/dev/null >"$dir/.nixflow-check.$$"; then
    nf_die_usage "$1 $2: cannot write in $dir"
  fi
  rm -f -- "$dir/.nixflow-check.$$"
}

# nf_requirements checks, before anything runs, that this host has what
# the script needs, and says what is missing.
nf_requirements() {
  local missing=() t
  if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
    printf 'error: bash %s is too old: the script needs bash 4.4 or later\n' "$BASH_VERSION" >&2
    exit 3
  fi
  for t in mkdir mkfifo rm cp mv cat tail sed grep sort cut tar dirname mktemp; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  if ((${#missing[@]} > 0)); then
    printf 'error: this host lacks tools the script needs: %s\n' "${missing[*]}" >&2
    exit 3
  fi
  local absent=() d
  for d in "${nf_all_deps[@]}"; do [[ -e $d ]] || absent+=("$d"); done
  if ((${#absent[@]} > 0)) && ! command -v nix-store >/dev/null 2>&1; then
    printf 'error: store paths the steps need are missing here, and there is no nix-store to build them:\n' >&2
    printf '  %s\n' "${absent[@]}" >&2
    printf 'hint: copy them from a machine that has them: nix copy --to ssh://HOST %s\n' "${absent[*]}" >&2
    # shellcheck disable=SC2016
    printf 'hint: or all the script needs at once: nix copy --to ssh://HOST $(nix-store -qR ./result)\n' >&2
    exit 3
  fi
}

nf_parse_args() {
  local v
  nf_format=${NIXFLOW_LOG_FORMAT:-$nf_default_format}
  nf_max_parallel=${NIXFLOW_MAX_PARALLEL:-$nf_default_max_parallel}
  nf_levels_mode=$nf_default_levels
  nf_events='' nf_keep_ws=0 nf_ig_ms=7500 nf_tg_ms=2500 nf_artifacts_dir='' nf_repo=$PWD nf_run_dir=''
  nf_flag_env=() nf_env_files=() nf_groups=auto nf_junit=''
  while (($# > 0)); do
    local arg=$1
    case $arg in
      --keep-workspace=*)
        # As Go's boolean flags take a value.
        case ${arg#*=} in
          1 | t | T | true | TRUE | True) nf_keep_ws=1 ;;
          0 | f | F | false | FALSE | False) nf_keep_ws=0 ;;
          *) nf_die_usage "invalid argument \"${arg#*=}\" for \"--keep-workspace\" flag: not a boolean (true, false)" ;;
        esac
        shift
        continue
        ;;
      --)
        shift
        (($# == 0)) || nf_die_usage "unexpected argument: $1 (the script takes flags only)"
        break
        ;;
      --*=*) set -- "${arg%%=*}" "${arg#*=}" "${@:2}"; continue ;;
      -h | --help) nf_usage; exit 0 ;;
      --keep-workspace) nf_keep_ws=1; shift; continue ;;
      --env | --env-file | --max-parallel | --schedule | --log-format | --events | --interrupt-grace | --terminate-grace | --artifacts-dir | --repo | --run-dir | --groups | --junit)
        (($# >= 2)) || nf_die_usage "flag needs an argument: $arg"
        v=$2
        shift 2
        ;;
      *) nf_die_usage "unknown flag: $arg" ;;
    esac
    case $arg in
      --env)
        [[ $v == ?*=* ]] || { nf_goquote "$v"; nf_die_usage "--env $nf_q: expected KEY=VALUE"; }
        if ! nf_valid_name "${v%%=*}"; then
          nf_goquote "$v"
          local qv=$nf_q
          nf_goquote "${v%%=*}"
          nf_die_usage "--env $qv: $nf_q is not a variable name (letters, digits and '_', not starting with a digit)"
        fi
        nf_flag_env+=("$v")
        ;;
      --env-file) nf_env_files+=("$v") ;;
      --max-parallel)
        [[ $v =~ ^-?[0-9]+$ ]] || nf_die_usage "invalid --max-parallel $v"
        ((v >= 0)) || nf_die_usage "--max-parallel must be 0 (no limit) or more, got $v"
        nf_max_parallel=$v
        ;;
      --schedule)
        case $v in
          ready) nf_levels_mode=0 ;;
          levels) nf_levels_mode=1 ;;
          *) nf_goquote "$v"; nf_die_usage "unknown --schedule $nf_q (known: ready, levels)" ;;
        esac
        ;;
      --log-format) nf_format=$v ;;
      --events) nf_events=$v ;;
      --interrupt-grace) nf_parse_duration "$v" || nf_die_usage "invalid --interrupt-grace $v"; nf_ig_ms=$nf_d ;;
      --terminate-grace) nf_parse_duration "$v" || nf_die_usage "invalid --terminate-grace $v"; nf_tg_ms=$nf_d ;;
      --artifacts-dir) nf_artifacts_dir=$v ;;
      --repo) nf_repo=$v ;;
      --run-dir) nf_run_dir=$v ;;
      --groups) nf_groups=$v ;;
      --junit) nf_junit=$v ;;
    esac
  done
  case $nf_groups in
    auto)
      nf_groups=none
      if [[ ${GITHUB_ACTIONS:-} == true ]]; then
        nf_groups=github
      elif [[ ${GITLAB_CI:-} == true ]]; then
        nf_groups=gitlab
      elif [[ ${BUILDKITE:-} == true ]]; then
        nf_groups=buildkite
      fi
      ;;
    none | github | gitlab | buildkite) ;;
    *) nf_goquote "$nf_groups"; nf_die_usage "unknown --groups $nf_q (known: auto, github, gitlab, buildkite, none)" ;;
  esac
  case $nf_format in
    structured | simple | json) ;;
    *) nf_goquote "$nf_format"; nf_die_usage "unknown --log-format $nf_q (known: structured, simple, json)" ;;
  esac
  if ((nf_max_parallel < 0)); then
    nf_max_parallel=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || echo 2)
  fi
  if [[ -n $nf_events ]]; then
    # Opened (and emptied) only once the run can start (nf_main): a run
    # refused leaves an earlier events file as it was.
    [[ ! -d $nf_events ]] || nf_die_usage "--events $nf_events: is a directory"
    local evdir
    evdir=$(dirname -- "$nf_events")
    [[ -d $evdir ]] || nf_die_usage "--events $nf_events: no directory $evdir"
    nf_events=$(cd "$evdir" && pwd)/${nf_events##*/}
  fi
  [[ -d $nf_repo ]] || nf_die_usage "--repo $nf_repo: not a directory"
  nf_repo=$(cd "$nf_repo" && pwd)
  if ((nf_copies_repo)) && ! { command -v git >/dev/null 2>&1 && git -C "$nf_repo" rev-parse --show-toplevel >/dev/null 2>&1; }; then
    local store=${NIX_STORE_DIR:-/nix/store} home=''
    [[ -n ${HOME:-} && -d $HOME ]] && home=$(cd "$HOME" && pwd)
    local why=''
    if [[ $nf_repo == / ]]; then
      why='it is /'
    elif [[ $nf_repo == "$store" || $nf_repo == "$store"/* ]]; then
      why='it is in the Nix store'
    elif [[ $nf_repo == "$home" ]]; then
      why='it is your home directory'
    fi
    if [[ -n $why ]]; then
      nf_die_usage "refusing to copy $nf_repo into every job: $why, not a project (and not a git work tree)" \
        "put the workflow in its project's directory and make that a git repository (git init), give the project with --repo DIR, or set copyRepo = false on its jobs"
    fi
    # As nixflow run: past 100,000 files or 1 GiB, a directory outside git
    # is most likely the wrong one (a downloads folder, build outputs).
    # The walk stops as soon as it knows (GNU find; elsewhere, no check).
    # Counted as the copy takes it: nixflow's own state and cache (and
    # the run directory) are not copied, and only files' bytes count.
    local -a prune=()
    local ex
    for ex in "${nf_run_dir:-}" "${XDG_STATE_HOME:-${HOME:-/tmp}/.local/state}/nixflow" "${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/nixflow"; do
      [[ -n $ex && $ex == "$nf_repo"/* ]] && prune+=(-path "./${ex#"$nf_repo"/}" -prune -o)
    done
    if (cd "$nf_repo" && find . "${prune[@]}" -printf '%y %s\n' 2>/dev/null | awk '{ n++; if ($1 == "f") b += $2 } n > 100000 || b > 1073741824 { big = 1; exit } END { exit !big }'); then
      nf_die_usage "refusing to copy $nf_repo into every job: it is not a git work tree, and it holds over 100000 files or 1024 MiB" \
        "put the workflow in its project's directory, make the project a git repository (git init: ignored files are then not copied), give the project with --repo DIR, or set copyRepo = false on its jobs"
    fi
  fi
}

# nf_overrides: declared names from this host's environment (but those
# every session sets, as actions.Ambient lists them), then --env-file
# values, then --env values.
nf_overrides() {
  local name f k kv data
  for name in "${nf_declared[@]}"; do
    case $name in
      PATH | HOME | USER | LOGNAME | SHELL | PWD | OLDPWD | SHLVL | HOSTNAME | TERM | TMPDIR | LANG | LANGUAGE | _ | LC_*) continue ;;
    esac
    [[ -n ${!name+x} ]] && nf_over[$name]=${!name}
  done
  local -a short=()
  for f in "${nf_env_files[@]}"; do
    if [[ ! -e $f ]]; then
      nf_die_usage "--env-file $f: open $f: no such file or directory"
    elif [[ -d $f ]]; then
      nf_die_usage "--env-file $f: read $f: is a directory"
    elif [[ ! -r $f ]]; then
      nf_die_usage "--env-file $f: open $f: permission denied"
    fi
    ! nf_has_nul "$f" || nf_die_usage "--env-file $f: $nf_err"
    data=$(cat -- "$f" 2>/dev/null; printf x)
    data=${data%x}
    local -A nf_pv=()
    local -a nf_pk=()
    nf_dotenv "$data" || nf_die_usage "--env-file $f: $nf_err"
    for k in "${nf_pk[@]}"; do
      nf_over[$k]=${nf_pv[$k]}
      nf_add_mask "${nf_pv[$k]}" || short+=("$k")
    done
  done
  if ((${#short[@]} > 0)); then
    while IFS='' read -r k; do
      printf 'warning: --env-file value of %s is shorter than 4 characters and is not masked\n' "$k" >&2
    done < <(printf '%s\n' "${short[@]}" | LC_ALL=C sort -u)
  fi
  for kv in "${nf_flag_env[@]}"; do nf_over[${kv%%=*}]=${kv#*=}; done
}

# nf_stop_watcher ends the watcher if it is still the process it was.
nf_stop_watcher() {
  [[ -n ${nf_watcher:-} ]] || return 0
  local pid=${nf_watcher% *} nf_start
  nf_start_of "$pid" && [[ $nf_start == "${nf_watcher#* }" ]] && kill "$pid" 2>/dev/null
  nf_watcher=''
}

nf_cleanup() {
  nf_stop_watcher
  # (Not children: a process SIGKILL is pending for runs no more of its
  # code.)
  if [[ -n ${nf_watchdog_pid:-} ]]; then kill -KILL "$nf_watchdog_pid" 2>/dev/null; fi
  # The script failing with jobs running: they go with it, and what they
  # started (with /proc).
  if ((${#nf_running[@]} > 0)); then
    kill -KILL "${nf_running[@]}" 2>/dev/null
    [[ ! -d /proc/self ]] || nf_sweep
  fi
  [[ -n ${nf_tmp:-} ]] && rm -rf "$nf_tmp"
  if [[ ${NIXFLOW_KEEP:-1} == 0 && -n ${nf_run_dir:-} ]]; then rm -rf "$nf_run_dir"; fi
}

# nf_ignored_signals: SIGINT and SIGQUIT ignored when the script started
# (bash ci.sh & from a script ignores both) cannot be trapped or reset by
# bash, and the steps would inherit them, so that a stop's SIGINT would
# not reach them. Where env can reset them (GNU coreutils 8.31 and
# later), every step, condition and provider starts through env, as
# nixflow run gives its steps the default dispositions. Sets nf_sigreset.
nf_ignored_signals() {
  nf_sigreset=()
  local sigs=()
  [[ $(trap -p INT) == "trap -- '' SIGINT" ]] && sigs+=(INT)
  [[ $(trap -p QUIT) == "trap -- '' SIGQUIT" ]] && sigs+=(QUIT)
  if ((${#sigs[@]})) && env --default-signal=INT true 2>/dev/null; then
    local IFS=,
    nf_sigreset=(env "--default-signal=${sigs[*]}")
  fi
}

nf_main() {
  # Nothing of the run reads the script: it may still be arriving on stdin.
  exec </dev/null
  nf_host_environ
  # Known shell options, whatever bash was started with (bash -e script,
  # ssh HOST 'bash -e -s' < script): the runtime tests statuses itself.
  set -u +e +E +o pipefail
  nf_ignored_signals
  nf_plan
  declare -gA nf_over=() nf_wfprov=() nf_secret_name=()
  declare -ga nf_masks=() nf_errors=() nf_wf_required=() nf_running=() nf_done=()
  declare -ga nf_res_status=() nf_res_allowed=() nf_res_domain=() nf_res_ms=() nf_res_attempts=() nf_res_start=() nf_res_reason=()
  nf_parse_args "$@"
  nf_requirements
  [[ -z $nf_junit ]] || nf_check_output_file --junit "$nf_junit"
  # Last of the checks: it makes the directory.
  [[ -z $nf_artifacts_dir ]] || nf_check_artifacts_dir "$nf_artifacts_dir"
  nf_overrides
  nf_state_home=${XDG_STATE_HOME:-${HOME:-/tmp}/.local/state}
  nf_cache_home=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}
  nf_now
  nf_run_start=$nf_t
  local ts rnd
  TZ=UTC0 printf -v ts '%(%Y%m%d-%H%M%S)T' -1
  printf -v rnd '%04x%02x' $((RANDOM)) $((RANDOM % 256))
  printf -v nf_run_id '%s.%03d-%s' "$ts" $((nf_t % 1000)) "$rnd"
  [[ -n $nf_run_dir ]] || nf_run_dir=$nf_state_home/nixflow/runs/$nf_run_id
  # Secrets (provider values in flight, JOB_ENV files, outputs) only ever
  # touch this directory, and it goes at the end. Made first: a run that
  # cannot have one leaves no run directory.
  local err
  if ! nf_tmp=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/nixflow.XXXXXXXX" 2>&1); then
    printf 'error: cannot make a temporary directory in %s: %s\n' "${TMPDIR:-/tmp}" "${nf_tmp##*: }" >&2
    printf 'hint: the script keeps its control files and secrets in flight there: set TMPDIR to a writable directory\n' >&2
    nf_tmp=''
    exit 3
  fi
  chmod 700 "$nf_tmp"
  trap nf_cleanup EXIT
  # A --run-dir given may be there already: only what this run made goes
  # again when it is refused.
  local made_run_dir=0
  [[ -e $nf_run_dir || -L $nf_run_dir ]] || made_run_dir=1
  if ! err=$(mkdir -p -- "$nf_run_dir/logs" "$nf_run_dir/jobs" "$nf_run_dir/artifacts" 2>&1); then
    err=${err%%$'\n'*}
    printf 'error: create the run directory: %s\n' "${err#mkdir: }" >&2
    exit 3
  fi
  # The run's lock, as nixflow run holds it, so that nixflow gc leaves a
  # running script's run alone (where flock(1) is: util-linux). Steps and
  # providers do not get it. One run in a directory: a --run-dir another
  # run is using, or that holds a run already, is refused (its logs would
  # mix), before anything of it is touched.
  nf_lock_fd=''
  local other=''
  if command -v flock >/dev/null 2>&1 && exec {nf_lock_fd}>>"$nf_run_dir/lock"; then
    flock -n "$nf_lock_fd" || other='another run is using it'
  fi
  [[ -n $other || ! -e $nf_run_dir/plan.json ]] || other='it holds a run already'
  if [[ -n $other ]]; then
    [[ -z ${nf_made_artifacts_dir:-} ]] || rm -rf -- "$nf_made_artifacts_dir"
    local dir=$nf_run_dir
    nf_run_dir=''
    nf_die_usage "--run-dir $dir: $other" "give each run a new directory of its own"
  fi
  chmod 700 "$nf_run_dir"
  if [[ -n $nf_events ]] && ! : 2>/dev/null >"$nf_events"; then
    if ((made_run_dir)); then
      rm -rf -- "$nf_run_dir"
    else
      rmdir -- "$nf_run_dir/logs" "$nf_run_dir/jobs" "$nf_run_dir/artifacts" 2>/dev/null
    fi
    [[ -z ${nf_made_artifacts_dir:-} ]] || rm -rf -- "$nf_made_artifacts_dir"
    nf_die_usage "--events: open $nf_events: cannot create the file"
  fi
  printf '%s\n' "$nf_plan_json" >"$nf_run_dir/plan.json"
  # The project, as logs last looks for it: the git work tree around the
  # repository, else the directory itself, its real path.
  { git -C "$nf_repo" rev-parse --show-toplevel 2>/dev/null || (cd -P "$nf_repo" && pwd); } >"$nf_run_dir/project"
  nf_run_dir=$(cd "$nf_run_dir" && pwd)
  # What of nixflow's own lies in the repository (the run's directory,
  # the state and cache directories) is never copied into a workspace;
  # git lists it when nothing ignores it.
  nf_repo_skip=()
  local d
  for d in "$nf_run_dir" "$nf_state_home/nixflow" "$nf_cache_home/nixflow"; do
    [[ -d $d ]] || continue
    d=$(cd "$d" && pwd)
    [[ $d == "$nf_repo"/* ]] && nf_repo_skip+=("${d#"$nf_repo"/}/")
  done
  mkdir -p "$nf_tmp/ctl" "$nf_tmp/outputs" "$nf_tmp/state"
  : >"$nf_tmp/masks"
  nf_state=$nf_tmp/state
  # Every job's directories and pipes, with one process each.
  local i
  local -a dirs=() fifos=("$nf_tmp/sleep")
  for i in "${!nf_jobs[@]}"; do
    dirs+=("$nf_tmp/ctl/$i" "$nf_run_dir/jobs/${nf_jobs[i]}")
    fifos+=("$nf_tmp/ctl/$i/fifo.out" "$nf_tmp/ctl/$i/fifo.err")
  done
  mkdir -p "${dirs[@]}" || exit 3
  mkfifo -m 600 "${fifos[@]}" || exit 3
  exec {nf_sleep_fd}<>"$nf_tmp/sleep"
  nf_signals=0 nf_first_signal=0
  exec 4>&1
  nf_note_fds
  nf_lost=0 nf_lost_checking=0 nf_lost_told=0 nf_watcher='' nf_watchdog_pid='' nf_chain0=''
  nf_wait_pids=0
  ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) && nf_wait_pids=1
  if [[ -r /proc/$$/stat ]]; then nf_ancestors; nf_chain0=$nf_chain; fi
  trap 'nf_on_signal INT' INT
  trap 'nf_on_signal TERM' TERM
  trap 'nf_on_signal HUP' HUP
  trap 'nf_on_signal QUIT' QUIT
  trap 'nf_on_signal LOST' USR2
  trap '' PIPE
  # The first process of its PID namespace (docker run IMAGE bash
  # result), the script has no parents to watch, and what is left to init
  # is left to it: no watcher, no watchdog, which would be its children
  # (see nf_watchdog); its end ends the namespace's processes anyway.
  if (($$ != 1)); then
    nf_watch_parent
    nf_watchdog
  fi
  # Jobs set their own USR1 trap; until they do, the signal must not kill them.
  trap '' USR1
  nf_emit run_start "" "" msg="$nf_name"
  # Stopped while the providers ran: no job starts, cleanup jobs neither.
  if nf_resolve_environments && [[ ! -e $nf_state/cancelled ]]; then
    nf_schedule
  else
    for i in "${!nf_jobs[@]}"; do
      nf_res_status[i]=skipped nf_res_allowed[i]=0 nf_res_domain[i]='' nf_res_ms[i]=0 nf_res_attempts[i]=0
      nf_res_reason[i]="the environment could not be prepared"
      [[ -e $nf_state/cancelled ]] && nf_res_status[i]=cancelled nf_res_reason[i]="run cancelled"
    done
  fi
  ((nf_keep_ws)) || rm -rf "$nf_run_dir/jobs"
  # With JSON lines on standard output, the summary goes to stderr.
  if [[ $nf_format == json ]]; then
    nf_summary >&2
    if [[ -n $nf_artifacts_dir ]]; then nf_export_artifacts "$nf_artifacts_dir" >&2; fi
    nf_reports
  else
    # JSON lines on standard output get no CI log groups. (bash's own
    # word for each line it could not write, a reader gone (`| head`)
    # or a full disk, is not said: nixflow run says nothing either.)
    [[ $nf_groups == none ]] || nf_write_groups 2>/dev/null
    nf_summary
    if [[ -n $nf_artifacts_dir ]]; then nf_export_artifacts "$nf_artifacts_dir"; fi
    nf_reports
  fi
  # No job uploaded any: the run's directory of artifacts goes, as with
  # nixflow run.
  rmdir -- "$nf_run_dir/artifacts" 2>/dev/null || true
  return "$nf_exit"
}
