package oci

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nixflow/nixflow/executors"
)

const (
	// cookieVar marks a step's processes, for the shared mode's clean-up.
	cookieVar = "NIXFLOW_STEP_COOKIE"
	// drainTimeout bounds the wait for the exec client once the step's
	// processes were killed.
	drainTimeout = 5 * time.Second
	// signalTimeout bounds one signalling exec.
	signalTimeout = 15 * time.Second
)

// reapScript kills what a step left running: with a cookie ($1), the
// processes whose environment holds it; without, every process of the
// container but the first and this one. It scans /proc until a pass finds
// nothing left to kill, for reapFor seconds at most. A process caught in
// the middle of an exec shows an empty environment: from the switch to the
// new address space to the setup of the environment in it, its stat shows
// 0 as its environment's end (field 51), as an exiting process's does;
// while the kernel writes the environment's pointers, an end that does
// not change yet. So an empty environment is read again between two reads
// of stat: 0, or an end that changed, makes the scan go round again (on a
// loaded machine an exec can take long); the same end, an environment
// that is empty for now or for good (env -i), 200 passes more at most.
// Zombies and exiting processes are left alone, but for one whose main
// thread has ended while others live on (see __nf_thread). Builtins only, of bash
// 4.0 (an image's bash may be older than the 4.4 that the SSH runner's
// and the compiled script's scan, internal/procsh, need).
const reapScript = `c=$1 IFS=' '
# __nf_env DIR: m set if the environment holds the cookie, e if it is not
# empty; fails if it cannot be read.
__nf_env() {
  m= e=
  while IFS= read -r -d '' kv; do
    e=1
    if [ "$kv" = "` + cookieVar + `=$c" ]; then m=1; break; fi
  done 2>/dev/null < "$1/environ"
}
# __nf_end DIR: end set to field 51 of the stat; fails for a process gone,
# a zombie or exiting: with 2 if it has more than one thread (field 20),
# its main thread ended. (The whole file: a name may hold a newline.)
__nf_end() {
  s=
  IFS= read -r -d '' s 2>/dev/null < "$1/stat"
  [ -n "$s" ] || return 1
  set -f; set -- ${s##*) }; set +f
  if [ "$1" = Z ] || [ "$1" = X ] || [ $((${7:-4} & 4)) != 0 ]; then
    [ "$1" != X ] && [ "${18:-1}" -gt 1 ] 2>/dev/null && return 2
    return 1
  fi
  end=${49:-0}
}
# __nf_thread DIR: t set to the directory of a live thread of the process
# other than its main one. A process whose main thread has ended lives on
# in its other threads (after pthread_exit; and for a moment while one of
# them executes a program: the kernel ends the others, the main one
# first); its pid shows a zombie, whose environment reads empty or cannot
# be opened: it is read through one.
__nf_thread() {
  for t in "$1"/task/[0-9]*; do
    [ "${t##*/}" != "${1##*/}" ] && __nf_end "$t" && return 0
  done
  return 1
}
t0=$SECONDS n=0
while :; do
  again= empty=
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = 1 ] || [ "$p" = "$$" ] && continue
    __nf_end "$d"
    case $? in
    0) ;;
    2) __nf_thread "$d" || continue; d=$t ;;
    *) continue ;;
    esac
    if [ -n "$c" ]; then
      [ -r "$d/environ" ] || continue
      __nf_env "$d" || continue
      if [ -z "$e" ]; then
        __nf_end "$d" || continue
        a=$end
        if [ "$a" = 0 ]; then again=1; continue; fi
        __nf_env "$d" || continue
        if [ -z "$e" ]; then
          __nf_end "$d" || continue
          if [ "$end" = "$a" ]; then empty=1; else again=1; fi
          continue
        fi
      fi
      [ -n "$m" ] || continue
    fi
    kill -9 "$p" 2>/dev/null && again=1
  done
  if [ -z "$again" ]; then
    [ -n "$empty" ] && [ "$n" -lt 200 ] || break
    n=$((n+1))
  fi
  [ $((SECONDS - t0)) -lt ` + reapFor + ` ] || break
done
`

// reapFor bounds the reap's scan, in seconds (whole seconds: the scan
// ends between reapFor-1 and reapFor seconds in), as the SSH runner's and
// the compiled script's. It ends long before in all but a loaded
// machine's exec; below signalTimeout.
const reapFor = "5"

// noWorkdir is what the wrapper says, instead of its pid, when the
// step's working directory is not a directory (one it cannot enter for
// another reason gets cd's own complaint). (It then reads its
// standard input as it would have: podman may lose the output of an
// exec that ends at once.)
const noWorkdir = "nixflow-no-workdir"

// wrapper runs a step (started in posix mode, see Run): it enters the
// step's working directory (or says noWorkdir instead of a pid), reads the step's environment as shell code
// from standard input, and starts the step, with standard input from
// /dev/null, as the leader of a process group of its own (job control):
// the step's first act is to print its pid, the group's, the first line
// of standard output. Once the step ended, unless it was stopped (the
// file $3 exists, made as the escalation's first signal is sent: it goes
// on from outside), it kills what the step left. Its exit status is the
// step's.
const wrapper = `set +o posix
cd -P -- "$2" 2>/dev/null || {
  if [ -d "$2" ]; then cd -P -- "$2"; else printf '` + noWorkdir + `\n'; fi
  IFS= read -r -d '' _; exit 1
}
IFS= read -r -d '' __nixflow_env
# Stopped before it started (its client given up): nothing runs.
if [ -e "$3" ]; then exit 1; fi
# The step's variables may be named as anything, this shell's own too:
# from here on, it reads only its arguments.
eval "$__nixflow_env"
# The step writes to the real stderr (fd 3); this shell's own word on a
# step killed by a signal ("Terminated", "Segmentation fault") goes
# nowhere: the exit status says it.
exec 3>&2 2>/dev/null
set -m
(printf '%s\n' "$BASHPID"; shift 3; exec "$@") </dev/null 2>&3 3>&- &
# (Without job control, wait returns when the step ends, not when it is
# stopped: SIGSTOP, Ctrl-Z.)
set +m
wait "$!"
# The step's exit status, the cookie, the stop file.
set -- "$?" "$1" "$3"
exec 2>&3 3>&-
if ! [ -e "$3" ]; then
  reap() {
` + reapScript + `
  }
  reap "$2"
fi
exit "$1"
`

// Run runs cmd through an exec in the container (see the package
// documentation).
func (w *workspace) Run(ctx context.Context, cmd executors.Command) (executors.Result, error) {
	if err := w.begin(); err != nil {
		return executors.Result{}, err
	}
	defer w.guard.Done()
	dir, err := executors.StepDir(w.dir, cmd)
	if err != nil {
		return executors.Result{}, err
	}
	if err := executors.LongVariable(cmd.Env); err != nil {
		return executors.Result{}, fmt.Errorf("run: %w", err)
	}
	if ctx.Err() != nil {
		return executors.Result{ExitCode: -1, Stopped: true}, nil
	}
	cookie := ""
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	c := hex.EncodeToString(rnd[:])
	env := append(append([]string(nil), cmd.Env...), cookieVar+"="+c)
	if w.cookie {
		cookie = c
	}

	// The wrapper enters dir: the runtime's own chdir would fail with a
	// message of its own, for docker, podman, runc and crun alike.
	args := []string{"exec", "--interactive", "--workdir", w.dir}
	if w.user != "" {
		args = append(args, "--user", w.user)
	}
	// The file that tells the wrapper the step was stopped, made before
	// the first signal: on the host, through the temporary directory's
	// mount.
	stopName := ".stopped-" + c
	// bash --posix reads no BASH_ENV (the container's, which may print: the
	// wrapper's first line is the step's pid); the wrapper leaves posix
	// mode at once, and the step's own bash reads it, as a local step's.
	args = append(args, w.ctr.id, "bash", "--posix", "-c", wrapper, "nixflow-step", cookie, dir, path.Join(w.tempDir, stopName))
	args = append(args, cmd.Argv...)
	x := w.cli.command(args...)
	script, err := executors.EnvScript(env, cmd.PathPrepend)
	if err != nil {
		return executors.Result{}, fmt.Errorf("run: %w", err)
	}
	x.Stdin = strings.NewReader(script)
	stdout, err := x.StdoutPipe()
	if err != nil {
		return executors.Result{}, fmt.Errorf("run: %w", err)
	}
	stderr, err := x.StderrPipe()
	if err != nil {
		return executors.Result{}, fmt.Errorf("run: %w", err)
	}
	if err := x.Start(); err != nil {
		return executors.Result{}, fmt.Errorf("run: %s exec: %w", w.cli.name, err)
	}

	// The first line of stdout is the wrapper's pid; the rest is the step's.
	pidc := make(chan int, 1)
	outErr := make(chan error, 2)
	var errText strings.Builder // the client's own complaint, if the step never started
	var outText strings.Builder // the same, where docker says it: on stdout
	go func() {
		br := bufio.NewReaderSize(stdout, 64<<10)
		line, err := br.ReadString('\n')
		pid, perr := strconv.Atoi(strings.TrimSpace(line))
		if err != nil || perr != nil || pid <= 0 {
			outText.WriteString(line)
			_, _ = io.Copy(&outText, io.LimitReader(br, 4<<10))
			pidc <- 0
			_, _ = io.Copy(io.Discard, br)
			outErr <- nil
			return
		}
		pidc <- pid
		outErr <- copyOut(cmd.Stdout, br)
	}()
	stderrDone := make(chan error, 1)
	go func() {
		stderrDone <- copyOut(&firstBytes{w: cmd.Stderr, keep: &errText}, stderr)
	}()
	waitc := make(chan error, 1)
	go func() {
		// Wait closes the pipes: the readers must be done first.
		err := <-outErr
		serr := <-stderrDone
		werr := x.Wait()
		if err == nil {
			err = serr
		}
		waitc <- errors.Join(werr, wrapOutput(err))
	}()

	// The stop's signals, asked for once, when the step is stopped.
	stopSigs := sync.OnceValue(func() executors.Signals {
		if cmd.Stop != nil {
			return cmd.Stop()
		}
		return executors.Signals{}
	})
	var pid int
	select {
	case pid = <-pidc:
	case <-ctx.Done():
		// Not started yet as far as we know: wait for the pid to stop it,
		// as long as the stop would take at most, or until hurried.
		sigs := stopSigs()
		t := time.NewTimer(max(sigs.InterruptGrace+sigs.TerminateGrace, time.Second))
		select {
		case pid = <-pidc:
			t.Stop()
		case <-t.C:
			return w.abandon(x, waitc, c, stopName)
		case <-sigs.Hurry:
			t.Stop()
			return w.abandon(x, waitc, c, stopName)
		}
	}
	if pid == 0 {
		err := <-waitc
		msg := strings.TrimSpace(errText.String())
		if msg == "" {
			msg = strings.TrimSpace(outText.String())
		}
		if msg == "" && err != nil {
			msg = err.Error()
		}
		if w.isTornDown() {
			return executors.Result{ExitCode: -1, Stopped: ctx.Err() != nil}, fmt.Errorf("run: the workspace was torn down")
		}
		if strings.TrimSpace(outText.String()) == noWorkdir {
			return executors.Result{}, fmt.Errorf("run: %w: %s", executors.ErrNoWorkdir, dir)
		}
		return executors.Result{}, fmt.Errorf("run: %s exec did not start the step: %s", w.cli.name, msg)
	}

	var werr error
	stopped := false
	select {
	case werr = <-waitc:
	case <-ctx.Done():
		stopped = true
		werr = w.stop(stopSigs(), pid, c, stopName, waitc, x)
	}
	res := executors.Result{Stopped: stopped, ExitCode: x.ProcessState.ExitCode()}
	var oerr *outputError
	if errors.As(werr, &oerr) {
		return res, oerr
	}
	if !stopped && (res.ExitCode > 128 || res.ExitCode < 0) && !w.running(res.ExitCode == 137 || res.ExitCode < 0) {
		// Killed with its container (docker kill, the daemon restarted,
		// out of memory): the workspace is gone, not the step's doing.
		return res, fmt.Errorf("run: the %s container %s is no longer running: %w", w.cli.name, shortID(w.ctr.id), executors.ErrWorkspaceLost)
	}
	return res, nil
}

// running reports whether the workspace's container still runs; one it
// cannot ask about counts as running. The runtime learns of a container
// killed a moment after the processes in it die (the step's client may
// see its end first, exit status 137, or none): with killed, one said to
// run is asked again over 0.7 s, which only a step killed with SIGKILL
// in a live container pays.
func (w *workspace) running(killed bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waits := []time.Duration{0}
	if killed {
		waits = append(waits, 100*time.Millisecond, 200*time.Millisecond, 400*time.Millisecond)
	}
	for _, wait := range waits {
		time.Sleep(wait)
		out, err := w.cli.output(ctx, nil, "container", "inspect", "--format", "{{.State.Running}}", w.ctr.id)
		if err != nil {
			if notFound(err) {
				return false
			}
			continue
		}
		if strings.TrimSpace(out) == "false" {
			return false
		}
	}
	return true
}

// shortID is a container id as ps shows it.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// abandon ends a Run stopped before its client said the step's pid, and
// that did not say it in the time the stop would have taken (a daemon
// that does not answer): the client is killed, and what it may have
// started in the container with it. The stop file, made first (through
// the temporary directory's mount, where the host may write), tells a
// wrapper the daemon starts later not to start the step.
func (w *workspace) abandon(x *exec.Cmd, waitc <-chan error, cookie, stopName string) (executors.Result, error) {
	w.log.Warn("the container runtime did not start the step in time: its client is killed", "runtime", w.cli.name)
	if err := os.WriteFile(filepath.Join(w.hostTemp, stopName), nil, 0o644); err != nil {
		w.log.Warn("mark the step stopped", "error", err)
	}
	_ = syscall.Kill(-x.Process.Pid, syscall.SIGKILL)
	select {
	case <-waitc:
	case <-time.After(drainTimeout):
	}
	ctx, cancel := context.WithTimeout(context.Background(), signalTimeout)
	defer cancel()
	if err := w.reap(ctx, cookieIf(w.cookie, cookie)); err != nil {
		w.log.Warn("kill the step's leftovers", "error", err)
	}
	return executors.Result{ExitCode: -1, Stopped: true}, nil
}

// stop runs the signal escalation sigs against the step's process group
// pid, then kills what is left, and returns what waiting for the client
// gave.
func (w *workspace) stop(sigs executors.Signals, pid int, cookie, stopName string, waitc <-chan error, x *exec.Cmd) error {
	type stage struct {
		sig   string
		grace time.Duration
	}
	stages := []stage{{"TERM", sigs.TerminateGrace}, {"KILL", 0}}
	if sigs.FirstSignalInterrupt {
		stages = append([]stage{{"INT", sigs.InterruptGrace}}, stages...)
	}
	// The first signal's exec tells the wrapper, before the step can end
	// of it, to leave the step's leftovers to this escalation: it makes
	// the file stopName in the temporary directory, as root (the host may
	// not write there: it belongs to the image's user).
	defer os.Remove(filepath.Join(w.hostTemp, stopName))
	mark := path.Join(w.tempDir, stopName)
	var werr error
	exited := false
	for _, s := range stages {
		alive := w.signal(s.sig, pid, mark)
		mark = ""
		w.log.Debug("signalled step", "signal", s.sig, "group", pid, "alive", alive)
		if !alive {
			break
		}
		t := time.NewTimer(s.grace)
		if !exited {
			select {
			case werr = <-waitc:
				exited = true
			case <-t.C:
				continue
			case <-sigs.Hurry:
				// A second Ctrl-C: the next signal at once.
				t.Stop()
				continue
			}
		}
		// The step is gone, its group may not be: wait for it to empty,
		// the grace out at most.
		if w.waitEmpty(pid, t.C, sigs.Hurry) {
			t.Stop()
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), signalTimeout)
	defer cancel()
	w.log.Debug("killing the step's leftovers")
	if err := w.reap(ctx, cookieIf(w.cookie, cookie)); err != nil {
		w.log.Warn("kill the step's leftovers", "error", err)
	}
	w.log.Debug("leftovers killed")
	if exited {
		return werr
	}
	select {
	case werr = <-waitc:
	case <-time.After(drainTimeout):
		_ = x.Process.Kill()
		werr = <-waitc
	}
	return werr
}

func cookieIf(on bool, cookie string) string {
	if on {
		return cookie
	}
	return ""
}

// emptyPoll is how often waitEmpty asks whether a group has members at
// first; the interval doubles up to emptyPollMax (each ask is an exec).
const (
	emptyPoll    = 100 * time.Millisecond
	emptyPollMax = time.Second
)

// waitEmpty waits for the process group pgid to have no members, and
// reports whether it has none, until timeout or hurry ends the wait.
func (w *workspace) waitEmpty(pgid int, timeout <-chan time.Time, hurry <-chan struct{}) bool {
	for d := emptyPoll; ; d = min(2*d, emptyPollMax) {
		if !w.signal("0", pgid, "") {
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-timeout:
			t.Stop()
			return false
		case <-hurry:
			t.Stop()
			return false
		}
	}
}

// signal sends sig (a name, or "0" to probe) to the process group pgid
// in the container, followed by SIGCONT, and reports whether the group
// still has members. mark, when set, is a file it makes first.
func (w *workspace) signal(sig string, pgid int, mark string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), signalTimeout)
	defer cancel()
	script := `g=-$2; [ -z "$3" ] || : >"$3"; if [ "$1" != 0 ]; then kill -s "$1" -- "$g" 2>/dev/null; kill -s CONT -- "$g" 2>/dev/null; fi; kill -0 -- "$g" 2>/dev/null`
	x := executors.OwnGroupContext(exec.CommandContext(ctx, w.cli.path, "exec", "--user", "0", w.ctr.id, "bash", "-c", script, "nixflow-signal", sig, strconv.Itoa(pgid), mark))
	x.Env = w.cli.env
	err := x.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return false
	}
	if err != nil {
		// The container is gone (torn down) or unreachable: nothing to
		// wait for.
		w.log.Debug("signal step", "signal", sig, "error", err)
		return false
	}
	return true
}

// reap kills the step's leftovers (see reapScript).
func (w *workspace) reap(ctx context.Context, cookie string) error {
	if w.isTornDown() && !w.cookie {
		return nil
	}
	_, err := w.cli.output(ctx, nil, "exec", "--user", "0", w.ctr.id, "bash", "-c", reapScript+"exit 0\n", "nixflow-reap", cookie)
	return err
}

func (w *workspace) isTornDown() bool {
	return w.guard.Closed()
}

// outputError is a failure to write the step's output.
type outputError struct{ err error }

func (e *outputError) Error() string { return "write step output: " + e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

func wrapOutput(err error) error {
	if err == nil {
		return nil
	}
	return &outputError{err}
}

// copyOut copies r to w; after a write error it drains r, so that the step
// does not block, and returns the error.
func copyOut(w io.Writer, r io.Reader) error {
	if w == nil {
		w = io.Discard
	}
	_, err := io.Copy(w, r)
	if err != nil {
		_, _ = io.Copy(io.Discard, r)
	}
	return err
}

// firstBytes passes stderr on, keeping its first bytes: when the step
// never started, they are the client's complaint.
type firstBytes struct {
	w    io.Writer
	keep *strings.Builder
}

func (f *firstBytes) Write(p []byte) (int, error) {
	if n := 4096 - f.keep.Len(); n > 0 {
		f.keep.Write(p[:min(n, len(p))])
	}
	if f.w == nil {
		return len(p), nil
	}
	return f.w.Write(p)
}
