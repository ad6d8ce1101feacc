package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nixflow/nixflow/executors"
)

const (
	// cookieVar is the variable Run adds to every step's environment, the
	// only one it adds: a random value unique to the step, by which the
	// step's processes that left its process group are found.
	cookieVar = "NIXFLOW_STEP_COOKIE"

	// defaultDrainTimeout bounds the wait for the output pipes to reach
	// end of file once the step's processes were killed: a process beyond
	// reach (see the package documentation) may hold them open forever.
	defaultDrainTimeout = 2 * time.Second

	// killTimeout bounds the wait for a process group to empty after
	// SIGKILL. It only runs out when a killed process stays a zombie
	// (when nothing reaps orphans, as in a container whose init does not)
	// or is stuck in the kernel.
	killTimeout = 2 * time.Second

	// windowedScanLimit is the longest a step may run for the scan for
	// its cookie to read only the processes started since the step
	// started, by pid: a cycle of the pid counter (pid_max allocations,
	// 32768 or more) in less time is implausible.
	windowedScanLimit = time.Second

	// copyBufferSize is the size of the buffer of a step's output
	// copier to begin with: most steps print little, and the buffer is
	// garbage once the step ends. It grows with the output (readSize).
	copyBufferSize = 8 << 10
)

// Run runs cmd in the workspace (see the package documentation). The
// Result is valid also when err reports that writing the output failed.
// When ctx is done before the step started, the step is not started and
// Run returns Result{ExitCode: -1, Stopped: true}. A nil cmd.Stop is taken
// as the zero escalation: SIGTERM, then SIGKILL at once.
func (w *workspace) Run(ctx context.Context, cmd executors.Command) (executors.Result, error) {
	if err := w.begin(); err != nil {
		return executors.Result{}, err
	}
	defer w.guard.Done()
	dir, err := executors.StepDir(w.dir, cmd)
	if err != nil {
		return executors.Result{}, err
	}
	if ctx.Err() != nil {
		return executors.Result{ExitCode: -1, Stopped: true}, nil
	}
	w.watch.start(w.cgroups)
	cookie := w.watch.cookie()
	env := executors.MergeEnv(w.environ, cmd.Env, cmd.PathPrepend)
	env = append(env, cookieVar+"="+cookie)
	prog, err := lookPath(cmd.Argv[0], env, w.progs)
	if err != nil {
		return executors.Result{}, fmt.Errorf("run: %w", err)
	}

	stdout, err := newOutput(cmd.Stdout)
	if err != nil {
		return executors.Result{}, fmt.Errorf("run: %w", err)
	}
	stderr, err := newOutput(cmd.Stderr)
	if err != nil {
		stdout.abort()
		return executors.Result{}, fmt.Errorf("run: %w", err)
	}
	streams, err := newStreamSet(stdout, stderr)
	if err != nil {
		stdout.abort()
		stderr.abort()
		return executors.Result{}, fmt.Errorf("run: %w", err)
	}
	c := &exec.Cmd{
		Path:        prog,
		Args:        cmd.Argv,
		Env:         env,
		Dir:         dir,
		Stdout:      stdout.writeEnd(),
		Stderr:      stderr.writeEnd(),
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if f := w.stdin.get(); f != nil {
		c.Stdin = f // else exec opens /dev/null for every step
	}
	var cg *stepCgroup
	if !w.noCgroup {
		cg = newStepCgroup(w.cgroups, cookie)
		defer cg.release(w.cgroups)
	}
	// Only processes started by the step can carry its cookie: note the
	// last pid allocated before it starts. In a cgroup, only a stopped
	// step needs the scan, and that one is a full scan (see below).
	lastBefore, windowed := 0, false
	if cg == nil {
		lastBefore, windowed = lastPID()
	}
	started := time.Now()
	if c, err = cg.start(c); err != nil {
		streams.abort()
		if err := checkRunDir(w.dir, dir); err != nil {
			return executors.Result{}, fmt.Errorf("run: %w", err)
		}
		return executors.Result{}, fmt.Errorf("run %q: %w", cmd.Argv[0], explainStart(err, cmd.Argv, env))
	}
	streams.start()
	pgid := c.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	go func() {
		awaitExit(pgid)
		waitErr = c.Wait()
		close(exited)
	}()

	stopped := executors.WaitOrStop(ctx, exited, cmd, func(sig executors.Signals) { stopGroup(pgid, exited, sig) })
	if !stopped {
		// Whatever the step left in its process group dies with it.
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err == nil {
			waitGroup(pgid, exited, killTimeout, nil)
		}
	}
	<-exited
	// A step that ran in a cgroup of its own took every process it
	// started with it there: killing the cgroup's members finds them all,
	// without the cookie scan (whose listing of /proc costs in proportion
	// to the processes running, at every step). The scan stays after a
	// stop, where escapees are likeliest, and without a cgroup. A short
	// step cannot have seen the kernel's pid counter go round: only the
	// pids allocated since it started need a look. Scan all processes
	// otherwise, and after a stop.
	if !cg.active() || stopped {
		full := stopped || !windowed || time.Since(started) > windowedScanLimit
		killByCookie(cookie, lastBefore, full)
	}
	cg.kill()
	if !cg.ended() {
		// Without a cgroup found empty, a process that cleared its
		// environment may be left: the job's temporary directory may not
		// serve another job.
		w.tainted.Store(true)
	}

	drained := make(chan struct{})
	drain := time.AfterFunc(w.drainTimeout, func() { close(drained) })
	streams.finish(drained)
	streams.flush()
	if !drain.Stop() {
		w.tainted.Store(true) // something beyond reach holds the pipes
	}

	var exit *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exit) {
		return executors.Result{}, fmt.Errorf("run %q: %w", cmd.Argv[0], waitErr)
	}
	res := executors.Result{ExitCode: exitCode(c.ProcessState), Stopped: stopped}
	if err := stdout.err; err != nil {
		return res, fmt.Errorf("write standard output: %w", err)
	}
	if err := stderr.err; err != nil {
		return res, fmt.Errorf("write standard error: %w", err)
	}
	return res, nil
}

// exitCode is the exit status of a process, or 128+N if signal N killed it.
func exitCode(state *os.ProcessState) int {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}

// stopGroup stops the process group pgid with the escalation sig, for as
// long as the group has members. exited is closed once the group's
// leader was reaped. SIGCONT follows SIGINT and SIGTERM, so that stopped
// processes get to handle them.
func stopGroup(pgid int, exited <-chan struct{}, sig executors.Signals) {
	signal := func(s syscall.Signal) bool {
		if syscall.Kill(-pgid, s) != nil {
			return false
		}
		if s != syscall.SIGKILL {
			_ = syscall.Kill(-pgid, syscall.SIGCONT)
		}
		return true
	}
	first := syscall.SIGTERM
	if sig.FirstSignalInterrupt {
		first = syscall.SIGINT
	}
	if !signal(first) {
		return
	}
	if sig.FirstSignalInterrupt {
		if waitGroup(pgid, exited, sig.InterruptGrace, sig.Hurry) || !signal(syscall.SIGTERM) {
			return
		}
	}
	if waitGroup(pgid, exited, sig.TerminateGrace, sig.Hurry) || !signal(syscall.SIGKILL) {
		return
	}
	waitGroup(pgid, exited, killTimeout, nil)
}

// waitGroup waits up to d for the process group pgid to be empty: for its
// leader to be reaped (exited is closed) and then for the group to have no
// live member. There is no notification for the latter: it polls, with a
// backoff from 1 to 20 milliseconds. A closed hurry ends the wait as
// the deadline does.
func waitGroup(pgid int, exited <-chan struct{}, d time.Duration, hurry <-chan struct{}) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	select {
	case <-exited:
	case <-deadline.C:
		return false
	case <-hurry:
		select {
		case <-exited:
			return !groupAlive(pgid)
		default:
			return false
		}
	}
	for backoff := time.Millisecond; ; backoff = min(2*backoff, 20*time.Millisecond) {
		if !groupAlive(pgid) {
			return true
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-deadline.C:
			t.Stop()
			return false
		case <-hurry:
			t.Stop()
			return !groupAlive(pgid)
		}
	}
}

// lookPath finds the program file: a name without a slash is looked up in
// the PATH of env, or in nixflow's PATH if env has none. Relative PATH
// entries are ignored. A non-nil c remembers what it found.
func lookPath(file string, env []string, c *progCache) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil // exec.Cmd resolves a relative path against Dir
	}
	pathList, ok := "", false
	for _, kv := range env {
		if v, found := strings.CutPrefix(kv, "PATH="); found {
			pathList, ok = v, true
		}
	}
	if !ok {
		return exec.LookPath(file)
	}
	key := progKey{file, pathList}
	if p, ok := c.get(key); ok && executable(p) {
		return p, nil
	}
	for _, dir := range filepath.SplitList(pathList) {
		if !filepath.IsAbs(dir) {
			continue
		}
		if p := filepath.Join(dir, file); executable(p) {
			c.put(key, p)
			return p, nil
		}
	}
	return "", &exec.Error{Name: file, Err: exec.ErrNotFound}
}

// executable reports whether p is a regular file with an execute bit.
func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// progCache remembers, for an executor's steps, where lookPath found a
// program in a PATH, as bash's command hash table does: the next step
// with the same program and PATH takes the remembered file while it is
// still an executable file, with one stat instead of one for every
// directory before it in PATH (a Nix shell's PATH has dozens). Like bash,
// it does not see a program of that name installed later into a
// directory earlier in PATH.
type progCache struct {
	mu sync.Mutex
	m  map[progKey]string
}

type progKey struct{ file, path string }

func (c *progCache) get(k progKey) (string, bool) {
	if c == nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[k]
	return p, ok
}

func (c *progCache) put(k progKey, p string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxProgs {
		// Jobs that each put their own directory in PATH (JOB_PATH) make
		// a PATH each: start again rather than keep them all.
		c.m = map[progKey]string{}
	}
	c.m[k] = p
}

// maxProgs bounds what a progCache remembers.
const maxProgs = 256

// output carries one output stream of a step: a pipe whose read end the
// step's copier (see streams.go) passes on to the step's writer. A nil
// writer needs no pipe: the stream goes to /dev/null.
type output struct {
	dst io.Writer
	// r is the pipe's read end, w the step's end (nil without a pipe).
	// r is not an *os.File: Go's poller would be told of it, and wake
	// for every write of the step (see streamSet.copy).
	r int
	w *os.File
	// err is the first error writing to dst, set before the copier ends.
	err error
	// set links the step's outputs (see streams.go); pending is what was
	// read from r and not written yet, with marks telling when; total
	// counts the bytes read, drainedAt is the set's clock when r was last
	// found empty; eof is set once r reached end of file, closed once r
	// is closed. Guarded by set.mu.
	set       *streamSet
	pending   []byte
	marks     []readMark
	total     int64
	drainedAt uint64
	eof       bool
	closed    bool
	// midLine tells that the last byte written was not a newline.
	midLine bool
	// grown tells that r's pipe was grown to pipeSize (growPipe).
	grown bool
}

func newOutput(dst io.Writer) (*output, error) {
	if dst == nil {
		return &output{r: -1}, nil
	}
	r, w, err := stepPipe()
	if err != nil {
		return nil, err
	}
	return &output{dst: dst, r: r, w: w}, nil
}

// writeEnd returns the step's end of the pipe, nil for /dev/null.
func (o *output) writeEnd() io.Writer {
	if o.w == nil {
		return nil // a nil *os.File in an io.Writer would not be nil
	}
	return o.w
}

// abort closes the pipe of a step that did not start.
func (o *output) abort() {
	if o.w != nil {
		syscall.Close(o.r)
		o.w.Close()
	}
}

// devNull is /dev/null, opened once for all the steps of an executor, as
// their standard input.
type devNull struct {
	once sync.Once
	f    *os.File
}

// get returns the open /dev/null; nil for a nil d, or if it cannot be
// opened (exec.Cmd then opens it itself, and reports why it cannot).
func (d *devNull) get() *os.File {
	if d == nil {
		return nil
	}
	d.once.Do(func() {
		f, err := os.Open(os.DevNull)
		if err == nil {
			d.f = f
		}
	})
	return d.f
}

// close closes /dev/null, once no step runs any more.
func (d *devNull) close() {
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
}
