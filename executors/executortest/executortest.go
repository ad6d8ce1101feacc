// Package executortest is the conformance suite of executor backends: Run
// checks an executors.Executor against the contract of package executors,
// with the same scenarios for every backend.
//
// Scenarios run steps the way the runner does (bash --noprofile --norc -eo
// pipefail -c SCRIPT) and use only bash, coreutils (sleep, cat, printf,
// seq, head, env, stat, readlink, mkfifo, ls, mkdir, chmod) and, where it
// is available, setsid from util-linux; one copies in a static program the
// suite builds with go (package mainexit), for Linux on the test's machine. They move files between the host
// and the workspace with CopyIn and CopyOut only, and take Dir and TempDir
// as paths the steps see, not host paths. They check that processes are
// gone with kill -0 from a later step, counting a zombie as gone (through
// /proc, where there is one), since nothing may reap orphans where the
// steps run.
//
// The environment check allows, besides the step's environment, the
// variables bash exports itself (PWD, OLDPWD, SHLVL, _) and
// NIXFLOW_STEP_COOKIE, which executors may add to find a step's processes.
//
// The scenarios run one after the other; with the local executor they take
// about two seconds.
package executortest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nixflow/nixflow/executors"
)

// argv is the Argv the runner uses for a step running script.
func argv(script string) []string {
	return []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script}
}

const (
	// grace is the interrupt and terminate grace of the scenarios.
	grace = 200 * time.Millisecond
	// stepTimeout bounds every step that is not meant to be stopped: a
	// step stopped by it fails the scenario rather than hanging it.
	stepTimeout = 30 * time.Second
	// readyTimeout bounds the wait for a step to report it is ready.
	readyTimeout = 15 * time.Second
)

// Backend is the executor under test.
type Backend struct {
	// New returns a fresh executor for each scenario; the suite closes it.
	New func(t *testing.T) executors.Executor
	// InheritsHostEnv says that steps see the test process's environment
	// below their declared one (the local executor). Otherwise no variable
	// of the test's environment may reach a step.
	InheritsHostEnv bool
	// ReadKept reads the file rel (slash-separated, relative to the
	// workspace) of a workspace after Teardown, by the backend's own means
	// (a host path, an ssh command). It returns an error satisfying
	// errors.Is(err, fs.ErrNotExist) when the file is gone. The suite
	// checks with it that Teardown(keep=false) removes the workspace and
	// Teardown(keep=true) keeps it; the backend's test removes what was
	// kept. Nil skips those checks.
	ReadKept func(t *testing.T, ws executors.Workspace, rel string) ([]byte, error)
	// ByHooks says that the user's hooks copy and start the steps (the
	// custom executor): whether a copy refuses what is in the way, or a
	// link out of the workspace, and how a working directory that is not
	// there fails, is theirs to keep, and the scenarios that check it are
	// skipped.
	ByHooks bool
}

// Run runs the conformance scenarios as subtests of t.
func Run(t *testing.T, b Backend) {
	s := &suite{Backend: b}
	t.Run("Output", s.testOutput)
	t.Run("LargeOutput", s.testLargeOutput)
	t.Run("Environment", s.testEnvironment)
	t.Run("LongVariable", s.testLongVariable)
	t.Run("PathPrepend", s.testPathPrepend)
	t.Run("WorkingDirectory", s.testWorkingDirectory)
	t.Run("MissingWorkingDirectory", s.testMissingWorkingDirectory)
	t.Run("Stdin", s.testStdin)
	t.Run("ExitCodes", s.testExitCodes)
	t.Run("CancelStubbornGrandchild", s.testCancelStubborn)
	t.Run("CancelInterruptFirst", func(t *testing.T) { s.testCancelFirstSignal(t, true) })
	t.Run("CancelTerminateFirst", func(t *testing.T) { s.testCancelFirstSignal(t, false) })
	t.Run("CancelHurry", s.testCancelHurry)
	t.Run("CancelZombieInGroup", s.testCancelZombieInGroup)
	t.Run("BackgroundAfterExit", s.testBackgroundAfterExit)
	t.Run("ProcessGroup", s.testProcessGroup)
	t.Run("StopEndsWithGroup", s.testStopEndsWithGroup)
	t.Run("SetsidEscapeeCancelled", s.testSetsidCancelled)
	t.Run("SetsidEscapeeAfterExit", s.testSetsidAfterExit)
	t.Run("RunnerNames", s.testRunnerNames)
	t.Run("SetsidEscapeeForks", s.testSetsidForks)
	t.Run("SetsidEscapeeMainThreadEnded", s.testSetsidMainThreadEnded)
	t.Run("CopyTree", s.testCopyTree)
	t.Run("CopyFile", s.testCopyFile)
	t.Run("CopyErrors", s.testCopyErrors)
	t.Run("CopyInTheWay", s.testCopyInTheWay)
	t.Run("CopyInMerge", s.testCopyInMerge)
	t.Run("CopyOutHardLinks", s.testCopyOutHardLinks)
	t.Run("CopyOutThroughLinks", s.testCopyOutThroughLinks)
	t.Run("CopyRepo", s.testCopyRepo)
	t.Run("TempDir", s.testTempDir)
	t.Run("ControlFilesInOneCopy", s.testControlFiles)
	t.Run("PrepareCancelled", s.testPrepareCancelled)
	t.Run("Teardown", s.testTeardown)
	t.Run("TeardownKeep", s.testTeardownKeep)
	t.Run("TeardownReadOnly", s.testTeardownReadOnly)
	t.Run("TeardownWhileStopping", s.testTeardownWhileStopping)
	t.Run("ConcurrentJobs", s.testConcurrentJobs)
	t.Run("TeardownSparesOtherJobs", s.testTeardownSparesOtherJobs)
}

type suite struct {
	Backend
}

// env is the test's view of one executor, with a run directory.
type env struct {
	t      *testing.T
	ex     executors.Executor
	runDir string
}

func (s *suite) setup(t *testing.T) *env {
	t.Helper()
	ex := s.New(t)
	t.Cleanup(func() {
		if err := ex.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &env{t: t, ex: ex, runDir: t.TempDir()}
}

// workspace is a prepared workspace that is torn down once, at the end of
// the test unless the test did.
type workspace struct {
	executors.Workspace
	t        *testing.T
	tornDown atomic.Bool
}

// prepare prepares the workspace of job.
func (e *env) prepare(job string) *workspace {
	e.t.Helper()
	return e.prepareSpec(executors.JobSpec{Job: job})
}

// prepareSpec prepares a workspace from spec, with the suite's run.
func (e *env) prepareSpec(spec executors.JobSpec) *workspace {
	e.t.Helper()
	job := spec.Job
	spec.RunID, spec.RunDir = "conformance", e.runDir
	spec.Log = func(msg string) { e.t.Logf("prepare %s: %s", job, msg) }
	ws, err := e.ex.Prepare(context.Background(), spec)
	if err != nil {
		e.t.Fatalf("Prepare(%q): %v", job, err)
	}
	w := &workspace{Workspace: ws, t: e.t}
	e.t.Cleanup(func() {
		if !w.tornDown.Load() {
			w.teardown(false)
		}
	})
	return w
}

func (w *workspace) teardown(keep bool) {
	w.t.Helper()
	w.tornDown.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	if err := w.Teardown(ctx, keep); err != nil {
		w.t.Errorf("Teardown(keep=%v): %v", keep, err)
	}
}

// baseEnv is what every scenario declares. PATH is not among it: the
// backend's own base environment provides bash and coreutils.
func baseEnv() []string {
	return []string{"LC_ALL=C"}
}

// step is a script to run and how.
type step struct {
	script  string
	env     []string // added to baseEnv
	prepend []string // Command.PathPrepend
	dir     string
	stdout  io.Writer // nil: collected and returned
	stop    executors.Signals
}

// WantLost waits, 30 s at most, for the error of a Run whose workspace a
// test took away (a killed container, a dropped connection) and fails
// the test unless it is executors.ErrWorkspaceLost: an executor failure
// the engine may retry elsewhere, not a step that exited. what names
// the Run in the failure.
func WantLost(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, executors.ErrWorkspaceLost) {
			t.Errorf("%s: %v, want executors.ErrWorkspaceLost", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// result is what a step run gives.
type result struct {
	executors.Result
	err            error
	stdout, stderr string
	stops          int32         // calls of Command.Stop
	stoppedIn      time.Duration // stopWhenReady: from the cancellation to Run's return
}

func (w *workspace) command(s step, stdout, stderr io.Writer, stops *atomic.Int32) executors.Command {
	return executors.Command{
		Argv: argv(s.script), Env: append(baseEnv(), s.env...), PathPrepend: s.prepend, Dir: s.dir,
		Stdout: stdout, Stderr: stderr,
		Stop: func() executors.Signals {
			stops.Add(1)
			return s.stop
		},
	}
}

// exec runs s with ctx and returns what it gave.
func (w *workspace) exec(ctx context.Context, s step) result {
	var stdout, stderr bytes.Buffer
	var out io.Writer = &stdout
	if s.stdout != nil {
		out = s.stdout
	}
	var stops atomic.Int32
	res, err := w.Run(ctx, w.command(s, out, &stderr, &stops))
	return result{Result: res, err: err, stdout: stdout.String(), stderr: stderr.String(), stops: stops.Load()}
}

// run runs s, which must not be stopped, and fails the test on an error.
func (w *workspace) run(s step) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	r := w.exec(ctx, s)
	if r.err != nil {
		w.t.Fatalf("Run(%q): %v", s.script, r.err)
	}
	if r.Stopped || r.stops != 0 {
		w.t.Fatalf("Run(%q): stopped after %v (Stop called %d times); stderr:\n%s", s.script, stepTimeout, r.stops, r.stderr)
	}
	return r
}

// mustRun runs s, which must exit with status 0.
func (w *workspace) mustRun(s step) result {
	w.t.Helper()
	r := w.run(s)
	if r.ExitCode != 0 {
		w.t.Fatalf("Run(%q): exit status %d; stdout:\n%s\nstderr:\n%s", s.script, r.ExitCode, r.stdout, r.stderr)
	}
	return r
}

// Output is one buffer for both output streams of a step, which Run may
// write concurrently with each other.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Output) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Output) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// readyWriter collects output and closes ready once it holds "ready\n".
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	seen  bool
}

func newReadyWriter() *readyWriter {
	return &readyWriter{ready: make(chan struct{})}
}

func (r *readyWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Write(p)
	if !r.seen && bytes.Contains(r.buf.Bytes(), []byte("ready\n")) {
		r.seen = true
		close(r.ready)
	}
	return len(p), nil
}

// stopWhenReady runs s until it prints "ready", then cancels its context
// and returns what Run gave, failing the test if that takes long. Right
// after cancelling, while Run is returning, it calls during if not nil.
func (w *workspace) stopWhenReady(s step, during func()) result {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newReadyWriter()
	s.stdout = out
	done := make(chan result, 1)
	go func() { done <- w.exec(ctx, s) }()
	select {
	case <-out.ready:
	case r := <-done:
		w.t.Fatalf("Run(%q) returned before the step was ready: %+v, err %v; stderr:\n%s", s.script, r.Result, r.err, r.stderr)
	case <-time.After(readyTimeout):
		w.t.Fatalf("Run(%q): not ready after %v", s.script, readyTimeout)
	}
	start := time.Now()
	cancel()
	if during != nil {
		during()
	}
	// The escalation takes at most the two graces, then SIGKILL, which
	// is quick: allow a generous margin for slow backends.
	var r result
	select {
	case r = <-done:
	case <-time.After(stepTimeout):
		w.t.Fatalf("Run(%q) did not return within %v of cancellation", s.script, stepTimeout)
	}
	if r.err != nil {
		w.t.Fatalf("Run(%q): %v", s.script, r.err)
	}
	if !r.Stopped {
		w.t.Errorf("Run(%q): Stopped is false after cancellation", s.script)
	}
	if r.stops != 1 {
		w.t.Errorf("Run(%q): Stop called %d times, want once", s.script, r.stops)
	}
	r.stoppedIn = time.Since(start)
	w.t.Logf("Run returned %v after cancellation, exit status %d", r.stoppedIn.Round(time.Millisecond), r.ExitCode)
	out.mu.Lock()
	r.stdout = out.buf.String()
	out.mu.Unlock()
	return r
}

// aliveFunc is a bash function: alive PID succeeds if the process is
// alive (a zombie is not).
const aliveFunc = `alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ -d /proc/self ] || return 0
  local k v
  while read -r k v; do
    if [ "$k" = State: ]; then
      case $v in Z*|X*) return 1;; esac
      return 0
    fi
  done 2>/dev/null < "/proc/$1/status"
  return 1
}
`

// assertGone checks from a new step that the processes whose pids are in
// the given files (relative to the workspace) are gone.
func (w *workspace) assertGone(pidFiles ...string) {
	w.t.Helper()
	script := aliveFunc + `for f in ` + strings.Join(quoteAll(pidFiles), " ") + `; do
  pid=$(cat "$f")
  if alive "$pid"; then echo "process $pid (from $f) survived"; exit 1; fi
done`
	r := w.run(step{script: script})
	if r.ExitCode != 0 {
		w.t.Errorf("%s%s", r.stdout, r.stderr)
	}
}

func quoteAll(ss []string) []string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = shellQuote(s)
	}
	return q
}

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (s *suite) testOutput(t *testing.T) {
	w := s.setup(t).prepare("output")
	r := w.mustRun(step{script: `printf 'out1\nout-last'; printf 'err1\nerr-last' >&2`})
	if r.stdout != "out1\nout-last" {
		t.Errorf("stdout = %q, want %q", r.stdout, "out1\nout-last")
	}
	if r.stderr != "err1\nerr-last" {
		t.Errorf("stderr = %q, want %q", r.stderr, "err1\nerr-last")
	}
}

// seqOutput is what seq from to prints.
func seqOutput(from, to int) []byte {
	b := make([]byte, 0, (to-from+1)*(len(strconv.Itoa(to))+1))
	for i := from; i <= to; i++ {
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '\n')
	}
	return b
}

func (s *suite) testLargeOutput(t *testing.T) {
	w := s.setup(t).prepare("large")
	// Both streams at once, some 8 MiB each, so that a backend that reads
	// them in turn deadlocks; then 8 MiB through head -c, ending in the
	// middle of a line.
	r := w.mustRun(step{script: `seq 1 1200000 & seq 5000001 6100000 >&2; wait; { seq 1 2000000 || true; } | head -c 8388608`})
	wantOut := append(seqOutput(1, 1200000), seqOutput(1, 2000000)[:8388608]...)
	wantErr := seqOutput(5000001, 6100000)
	for _, c := range []struct {
		name      string
		got, want []byte
	}{{"stdout", []byte(r.stdout), wantOut}, {"stderr", []byte(r.stderr), wantErr}} {
		if len(c.got) != len(c.want) || sha256.Sum256(c.got) != sha256.Sum256(c.want) {
			t.Errorf("%s: got %d bytes (sha256 %x), want %d bytes (sha256 %x)",
				c.name, len(c.got), sha256.Sum256(c.got), len(c.want), sha256.Sum256(c.want))
		}
	}
}

// hostOnlyVar is set in the test process's environment during the
// Environment scenario: it reaches steps only on backends that inherit it.
const hostOnlyVar = "NIXFLOW_T_HOST_ONLY"

// testLongVariable runs a step with a variable longer than the kernel
// lets a program start with (a large job output, as NEEDS_<JOB>_<KEY>):
// the step cannot run, and the error names the variable and its length,
// where the exec would say only "Argument list too long". A variable just
// under the limit gets through whole.
func (s *suite) testLongVariable(t *testing.T) {
	w := s.setup(t).prepare("longvar")
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	r := w.exec(ctx, step{script: `echo ran`, env: []string{"NIXFLOW_T_BIG=" + strings.Repeat("x", 200000)}})
	if r.err == nil || !strings.Contains(r.err.Error(), "variable NIXFLOW_T_BIG is 200000 bytes long") {
		t.Errorf("Run with a 200,000-byte variable: %v (exit status %d, stdout %q, stderr %q); want an error naming it", r.err, r.ExitCode, r.stdout, r.stderr)
	}
	fits := strings.Repeat("y", executors.MaxArgStrlen-len("NIXFLOW_T_FITS=")-1)
	r = w.mustRun(step{script: `printf '%s' "${#NIXFLOW_T_FITS}"`, env: []string{"NIXFLOW_T_FITS=" + fits}})
	if r.stdout != strconv.Itoa(len(fits)) {
		t.Errorf("a variable just under the limit arrived as %s bytes, want %d", r.stdout, len(fits))
	}
}

func (s *suite) testEnvironment(t *testing.T) {
	t.Setenv(hostOnlyVar, "from the test process")
	w := s.setup(t).prepare("env")
	vars := []string{
		"NIXFLOW_T_SPACES=a  b c ",
		"NIXFLOW_T_NEWLINES=line 1\nline 2\n",
		"NIXFLOW_T_EQUALS=k=v==w",
		"NIXFLOW_T_EMPTY=",
		"NIXFLOW_T_QUOTES=it's \"$HOME\" `x` \\",
	}
	r := w.mustRun(step{
		script: `printf '%s\0' "$NIXFLOW_T_SPACES" "$NIXFLOW_T_NEWLINES" "$NIXFLOW_T_EQUALS" "${NIXFLOW_T_EMPTY-unset}" "$NIXFLOW_T_QUOTES" ENV; env -0`,
		env:    vars,
	})
	fields := strings.Split(strings.TrimSuffix(r.stdout, "\x00"), "\x00")
	i := slices.Index(fields, "ENV")
	if i < 0 {
		t.Fatalf("unexpected output %q", r.stdout)
	}
	want := []string{"a  b c ", "line 1\nline 2\n", "k=v==w", "", "it's \"$HOME\" `x` \\"}
	if got := fields[:i]; !slices.Equal(got, want) {
		t.Errorf("values seen by bash = %q, want %q", got, want)
	}

	// What a program started by bash sees: the declared environment with
	// its values, over the backend's base environment.
	given := map[string]string{}
	for _, kv := range append(baseEnv(), vars...) {
		k, v, _ := strings.Cut(kv, "=")
		given[k] = v
	}
	seen := map[string]string{}
	for _, kv := range fields[i+1:] {
		k, v, _ := strings.Cut(kv, "=")
		seen[k] = v
		if want, ok := given[k]; ok && v != want {
			t.Errorf("env: %s=%q, want %q", k, v, want)
		}
	}
	for k := range given {
		if _, ok := seen[k]; !ok {
			t.Errorf("env: %s is missing", k)
		}
	}
	v, ok := seen[hostOnlyVar]
	switch {
	case s.InheritsHostEnv && v != "from the test process":
		t.Errorf("env: %s=%q (set: %v), want the test process's value: this backend inherits it", hostOnlyVar, v, ok)
	case !s.InheritsHostEnv && ok:
		t.Errorf("env: %s=%q leaked from the test process's environment", hostOnlyVar, v)
	}
	if _, ok := seen["PATH"]; !ok {
		t.Errorf("env: no PATH: the backend's base environment must give one")
	}
}

// testPathPrepend checks that PathPrepend goes in front of the base PATH,
// which stays (coreutils remain reachable), or in front of a declared one.
func (s *suite) testPathPrepend(t *testing.T) {
	w := s.setup(t).prepare("path")
	w.mustRun(step{script: `mkdir -p tools/a tools/b; printf '#!/bin/sh\necho a\n' > tools/a/which-tool; printf '#!/bin/sh\necho b\n' > tools/b/which-tool; chmod +x tools/*/which-tool`})
	a, b := path.Join(w.Dir(), "tools/a"), path.Join(w.Dir(), "tools/b")
	r := w.mustRun(step{script: `which-tool; cat /dev/null && echo coreutils; printf '%s\n' "$PATH"`, prepend: []string{a, b}})
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 || lines[0] != "a" || lines[1] != "coreutils" {
		t.Fatalf("stdout = %q, want the first prepended directory to win and coreutils reachable", r.stdout)
	}
	if !strings.HasPrefix(lines[2], a+":"+b+":") {
		t.Errorf("PATH = %q, want it to start with %q", lines[2], a+":"+b+":")
	}
	r = w.mustRun(step{script: `printf '%s\n' "$PATH"`, prepend: []string{b}, env: []string{"PATH=/nixflow-declared:" + lines[2]}})
	if got := strings.TrimSpace(r.stdout); !strings.HasPrefix(got, b+":/nixflow-declared:") {
		t.Errorf("with a declared PATH, PATH = %q, want %q in front of it", got, b+":")
	}
}

func (s *suite) testWorkingDirectory(t *testing.T) {
	w := s.setup(t).prepare("wd")
	wsEnv := []string{"WS=" + w.Dir()}
	w.mustRun(step{script: `test "$(pwd -P)" = "$(cd "$WS" && pwd -P)"; mkdir -p sub/dir`, env: wsEnv})
	w.mustRun(step{script: `test "$(pwd -P)" = "$(cd "$WS/sub/dir" && pwd -P)"; ln -s sub/dir "$WS/lnk"`, env: wsEnv, dir: "sub/dir"})
	// A working directory reached through a link is entered as the
	// directory it leads to, as a process's own chdir enters it (hooks
	// enter it as they do).
	if s.ByHooks {
		return
	}
	if r := w.mustRun(step{script: `echo "$PWD"; pwd -P`, dir: "lnk"}); len(strings.Fields(r.stdout)) != 2 || strings.Fields(r.stdout)[0] != strings.Fields(r.stdout)[1] {
		t.Errorf("in a working directory reached through a link, $PWD and pwd -P: %q, want the same", r.stdout)
	}
}

// testMissingWorkingDirectory runs a step in a working directory that is
// not there, and in one that is a file: the step's doing (the workspace
// is the workflow's), reported as an error for which
// errors.Is(err, executors.ErrNoWorkdir) holds, the step not run.
func (s *suite) testMissingWorkingDirectory(t *testing.T) {
	if s.ByHooks {
		t.Skip("the executor's hooks enter the working directory: how they fail is theirs")
	}
	w := s.setup(t).prepare("nowd")
	w.mustRun(step{script: `echo f > file`})
	for _, dir := range []string{"missing", "missing/sub", "file"} {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		r := w.exec(ctx, step{script: `echo ran; touch ran`, dir: dir})
		cancel()
		if !errors.Is(r.err, executors.ErrNoWorkdir) || !strings.Contains(r.err.Error(), dir) {
			t.Errorf("Run in %q: %v (exit %d, stderr %q), want executors.ErrNoWorkdir naming the directory", dir, r.err, r.ExitCode, r.stderr)
		}
		if r.stdout != "" || r.stderr != "" {
			t.Errorf("Run in %q: the step ran, or the executor's complaint is in its output: stdout %q, stderr %q", dir, r.stdout, r.stderr)
		}
	}
	if r := w.mustRun(step{script: `test -e ran || echo none`}); r.stdout != "none\n" {
		t.Errorf("a step ran in a missing working directory, or elsewhere: %q", r.stdout)
	}
}

func (s *suite) testStdin(t *testing.T) {
	w := s.setup(t).prepare("stdin")
	r := w.mustRun(step{script: `if [ -t 0 ]; then echo terminal; fi; cat; echo "cat: $?"`})
	if r.stdout != "cat: 0\n" {
		t.Errorf("stdout = %q, want %q", r.stdout, "cat: 0\n")
	}
}

func (s *suite) testExitCodes(t *testing.T) {
	w := s.setup(t).prepare("exit")
	for _, c := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"true", 0},
		{"exit 3", 3},
		{"false", 1},
		{"kill -TERM $$", 143},
		{"kill -KILL $$", 137},
		{"kill -SEGV $$", 139},
		{"no-such-command-nixflow", 127},
		{"echo 'echo x' > noexec.sh; chmod 644 noexec.sh; ./noexec.sh", 126},
	} {
		r := w.run(step{script: c.script})
		if r.ExitCode != c.want {
			t.Errorf("Run(%q): exit status %d, want %d", c.script, r.ExitCode, c.want)
		}
		// A step killed by a signal has nothing to say: no shell of the
		// backend's may speak for it ("Terminated", "Segmentation fault").
		if strings.HasPrefix(c.script, "kill") && (r.stdout != "" || r.stderr != "") {
			t.Errorf("Run(%q): output %q, %q; want none", c.script, r.stdout, r.stderr)
		}
	}
}

func (s *suite) testCancelStubborn(t *testing.T) {
	w := s.setup(t).prepare("cancel")
	// A grandchild that ignores SIGINT and SIGTERM, and its own child:
	// only SIGKILL stops them, after both graces.
	w.stopWhenReady(step{
		script: `bash -c 'trap "" INT TERM; sleep 1000 & echo $! > sleep.pid; echo $$ > grandchild.pid; echo ready; wait' &
wait`,
		stop: executors.Signals{FirstSignalInterrupt: true, InterruptGrace: grace, TerminateGrace: grace},
	}, nil)
	w.assertGone("grandchild.pid", "sleep.pid")
}

// testCancelHurry checks that a closed Signals.Hurry (a second Ctrl-C)
// cuts graces of an hour short: the step that ignores SIGINT and SIGTERM
// is killed at once, well within stepTimeout.
func (s *suite) testCancelHurry(t *testing.T) {
	w := s.setup(t).prepare("hurry")
	hurry := make(chan struct{})
	r := w.stopWhenReady(step{
		script: `trap "" INT TERM; echo $$ > stubborn.pid; echo ready; for i in $(seq 1000); do sleep 0.1; done; echo survived`,
		stop:   executors.Signals{FirstSignalInterrupt: true, InterruptGrace: time.Hour, TerminateGrace: time.Hour, Hurry: hurry},
	}, func() { close(hurry) })
	if strings.Contains(r.stdout, "survived") {
		t.Errorf("the step survived: %q", r.stdout)
	}
	w.assertGone("stubborn.pid")
}

// testCancelZombieInGroup stops a step whose process group keeps a
// zombie: a process of the step, killed with the group, whose parent
// left the group (setsid) and never waits for it. The zombie has ended
// and must not hold the stop; the parent, which carries the step's
// cookie, is gone when Run returns, as after any stop. A stop that
// waited for the zombie would last until the executor's own fallback
// (SSH's: the client killed 7 s after SIGKILL): the bound below is not
// a speed figure (a stop takes 0.01 to 2 s, podman's the longest), it
// tells a stop that ended from one that was forced.
func (s *suite) testCancelZombieInGroup(t *testing.T) {
	w := s.setup(t).prepare("zombie")
	w.skipWithoutSetsid()
	hurry := make(chan struct{})
	r := w.stopWhenReady(step{
		script: `trap "" INT TERM
bash -c 'sleep 1000 & exec setsid sleep 1001' & p=$!
echo $p > parent.pid
# Ready once the parent has left: its session is its own.
for i in $(seq 1000); do
  read -r st < /proc/$p/stat || exit 1
  st=${st##*) }; set -- $st
  [ "$4" = "$p" ] && break
  sleep 0.01
done
echo ready; wait`,
		stop: executors.Signals{FirstSignalInterrupt: true, InterruptGrace: time.Hour, TerminateGrace: time.Hour, Hurry: hurry},
	}, func() { close(hurry) })
	if r.stoppedIn > 6*time.Second {
		t.Errorf("the stop took %v: it waited for the zombie", r.stoppedIn.Round(time.Millisecond))
	}
	w.assertGone("parent.pid")
}

func (s *suite) testCancelFirstSignal(t *testing.T, interrupt bool) {
	w := s.setup(t).prepare("signal")
	if interrupt {
		// A signal ignored when bash starts cannot be trapped; a
		// program started with SIGINT ignored (as a background job of
		// a script) passes that on.
		if r := w.mustRun(step{script: `trap 'echo trapped' INT; kill -INT $$`}); r.stdout != "trapped\n" {
			t.Skip("SIGINT is ignored where the steps run (inherited from the test process?)")
		}
	}
	r := w.stopWhenReady(step{
		script: `trap 'echo INT >> marker; exit 7' INT
trap 'echo TERM >> marker; exit 8' TERM
echo ready
sleep 1000 & wait`,
		stop: executors.Signals{FirstSignalInterrupt: interrupt, InterruptGrace: grace, TerminateGrace: grace},
	}, nil)
	wantMarker, wantCode := "TERM\n", 8
	if interrupt {
		wantMarker, wantCode = "INT\n", 7
	}
	if r.ExitCode != wantCode {
		t.Errorf("exit status %d, want %d", r.ExitCode, wantCode)
	}
	got := w.mustRun(step{script: `cat marker`}).stdout
	if got != wantMarker {
		t.Errorf("marker = %q, want %q", got, wantMarker)
	}
}

// testProcessGroup checks that the step leads a process group of its own
// (its shell's pid is the group's), so that `kill -- -$$` and `kill 0`
// reach what the step started, and nothing of the executor's.
func (s *suite) testProcessGroup(t *testing.T) {
	w := s.setup(t).prepare("pgroup")
	r := w.mustRun(step{script: `if [ -r /proc/$$/stat ]; then read -r st </proc/$$/stat; st=${st##*) }; set -- $st; echo "$3 $$"; else echo "$(ps -o pgid= -p $$) $$"; fi`})
	if f := strings.Fields(r.stdout); len(f) != 2 || f[0] != f[1] {
		t.Errorf("process group and pid of the step's shell: %q, want the same", r.stdout)
	}
	// A step stopped for a while (SIGSTOP, Ctrl-Z) has not ended.
	if r := w.mustRun(step{script: `(sleep 0.5; kill -CONT $$) & kill -STOP $$; echo resumed`}); r.stdout != "resumed\n" {
		t.Errorf("a step stopped, then continued: stdout %q, want it to go on", r.stdout)
	}
	for _, script := range []string{`sleep 1000 & kill -TERM -- -$$; wait`, `sleep 1000 & kill 0; wait`} {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		r = w.exec(ctx, step{script: script})
		cancel()
		if r.err != nil || r.Stopped || r.ExitCode != 128+15 {
			t.Errorf("Run(%q): exit %d, stopped %v, %v; stderr %q; want exit 143", script, r.ExitCode, r.Stopped, r.err, r.stderr)
		}
	}
}

// testStopEndsWithGroup stops a step that ends at the first signal but
// leaves a child that ends at the second: Run returns once the group is
// empty, not after the second signal's whole grace.
func (s *suite) testStopEndsWithGroup(t *testing.T) {
	w := s.setup(t).prepare("stopgroup")
	const long = 5 * time.Minute
	start := time.Now()
	r := w.stopWhenReady(step{
		script: `trap 'exit 5' INT
(trap '' INT; exec sleep 1000 >/dev/null 2>&1) &
echo ready
wait`,
		stop: executors.Signals{FirstSignalInterrupt: true, InterruptGrace: grace, TerminateGrace: long},
	}, nil)
	if took := time.Since(start); took > long/2 {
		t.Errorf("Run returned after %v: it waited the grace out with the group empty", took)
	}
	if r.ExitCode != 5 {
		t.Errorf("exit status %d, want 5 (the step's own, at the first signal)", r.ExitCode)
	}
}

func (s *suite) testBackgroundAfterExit(t *testing.T) {
	w := s.setup(t).prepare("background")
	start := time.Now()
	w.mustRun(step{script: `sleep 1000 & echo $! > bg.pid; (trap "" INT TERM HUP; exec sleep 1000) & echo $! > stubborn.pid; exit 0`})
	t.Logf("Run returned after %v", time.Since(start).Round(time.Millisecond))
	w.assertGone("bg.pid", "stubborn.pid")
}

// skipWithoutSetsid skips the test if setsid is not available to steps.
func (w *workspace) skipWithoutSetsid() {
	w.t.Helper()
	if r := w.run(step{script: `command -v setsid`}); r.ExitCode != 0 {
		w.t.Skip("setsid is not available")
	}
}

func (s *suite) testSetsidCancelled(t *testing.T) {
	w := s.setup(t).prepare("setsid")
	w.skipWithoutSetsid()
	// The escapee keeps the step's standard output open, too.
	w.stopWhenReady(step{
		script: `setsid bash -c 'trap "" INT TERM HUP; echo $$ > escapee.pid; echo ready; exec sleep 1000' &
wait`,
		stop: executors.Signals{FirstSignalInterrupt: true, InterruptGrace: grace, TerminateGrace: grace},
	}, nil)
	w.assertGone("escapee.pid")
}

func (s *suite) testSetsidAfterExit(t *testing.T) {
	w := s.setup(t).prepare("setsid")
	w.skipWithoutSetsid()
	w.mustRun(step{script: `mkfifo started
setsid bash -c 'echo $$ > escapee.pid; echo > started; exec sleep 1000' </dev/null >/dev/null 2>&1 &
read -r _ < started
exit 0`})
	w.assertGone("escapee.pid")
}

// runnerNames are names of variables the backends' step runners use
// (the SSH runner's nf_*, the OCI wrapper's __nixflow_*): a step declares
// them as any other.
var runnerNames = []string{"nf_path", "nf_argv", "nf_cookie", "nf_kv", "nf_env", "nf_state", "nf_n", "nf_prepend",
	"__nixflow_env", "__nixflow_c", "__nixflow_stop", "__nixflow_rc", "pid", "cookie", "state"}

// testRunnerNames: variables named as a step runner's own reach the step
// with their declared values, and take nothing from the runner: the step
// runs, and a setsid escapee of it (its cookie declared too) is still
// found and killed once it ends.
func (s *suite) testRunnerNames(t *testing.T) {
	w := s.setup(t).prepare("runner-names")
	w.skipWithoutSetsid()
	var env []string
	var want strings.Builder
	for _, n := range runnerNames {
		env = append(env, n+"=declared "+n)
		fmt.Fprintf(&want, "%s=declared %s\n", n, n)
	}
	r := w.mustRun(step{env: env, script: `for v in ` + strings.Join(runnerNames, " ") + `; do printf '%s=%s\n' "$v" "${!v-}"; done
mkfifo started
setsid bash -c 'echo $$ > escapee.pid; echo > started; exec sleep 1000' </dev/null >/dev/null 2>&1 &
read -r _ < started`})
	if r.stdout != want.String() {
		t.Errorf("the step saw:\n%s\nwant:\n%s", r.stdout, want.String())
	}
	w.assertGone("escapee.pid")
}

// testSetsidForks: an escapee that keeps starting processes while the
// step ends leaves none of them behind: the search for the step's
// processes looks again while it finds new ones, and waits for the killed
// ones to end. Every process of the escapee carries a mark of this test
// in its environment; a later step counts the processes that still do.
func (s *suite) testSetsidForks(t *testing.T) {
	w := s.setup(t).prepare("setsid-forks")
	w.skipWithoutSetsid()
	mark := "NIXFLOW_TEST_MARK=" + strconv.FormatInt(time.Now().UnixNano(), 36)
	w.mustRun(step{script: `mkfifo started
export ` + mark + `
setsid bash -c 'for ((i = 0; i < 300; i++)); do
  sleep 1000 &
  if ((i == 2)); then echo > started; fi
done
wait' </dev/null >/dev/null 2>&1 &
read -r _ < started
exit 0`})
	switch out := w.leftMarked(mark); {
	case out == "no-proc":
		t.Skip("no /proc where steps run")
	case out != "0":
		t.Errorf("processes of the escapee left (count, pids): %s", out)
	}
}

// testSetsidMainThreadEnded: an escapee whose main thread has ended, and
// that lives on in its other threads (see package mainexit), is killed
// too: its pid shows a zombie whose environment cannot be read, so the
// search for the step's processes must look through a thread that lives.
// (A program whose thread other than the main one executes another is so
// for a moment.) A later step counts the threads that still carry the
// test's mark.
func (s *suite) testSetsidMainThreadEnded(t *testing.T) {
	w := s.setup(t).prepare("main-thread-ended")
	w.skipWithoutSetsid()
	if err := w.CopyIn(context.Background(), MainExit(t), "mainexit"); err != nil {
		t.Fatalf("CopyIn: %v", err)
	}
	mark := "NIXFLOW_TEST_MARK=" + strconv.FormatInt(time.Now().UnixNano(), 36)
	r := w.mustRun(step{script: `[ -d /proc/self ] || { echo no-proc; exit 0; }
export ` + mark + `
setsid ./mainexit </dev/null >/dev/null 2>&1 &
p=$!
for ((i = 0; i < 500; i++)); do
  s=$(< "/proc/$p/stat") || break
  s=${s##*) } t=("/proc/$p/task/"*)
  # Its main thread a zombie, and its other threads there.
  [ "${s%% *}" = Z ] && [ ${#t[@]} -gt 1 ] && break
  sleep 0.01
done
echo "${s%% *} ${#t[@]}"`})
	switch out := strings.TrimSpace(r.stdout); {
	case out == "no-proc":
		t.Skip("no /proc where steps run")
	case !strings.HasPrefix(out, "Z ") || out == "Z 1":
		t.Fatalf("the escapee's main thread did not end, or the escapee did: its state and threads %q", out)
	}
	if out := w.leftMarked(mark); out != "0" {
		t.Errorf("processes of the escapee left (count, pids): %s", out)
	}
}

// leftMarked runs a step that counts the processes whose environment
// still holds mark, read through each of their threads (one whose main
// thread has ended shows none through its pid), and kills them, so that a
// failure leaves nothing behind. It returns their count and pids, or
// "no-proc" where steps see no /proc.
func (w *workspace) leftMarked(mark string) string {
	w.t.Helper()
	r := w.mustRun(step{script: `[ -d /proc/self ] || { echo no-proc; exit 0; }
declare -A seen=()
left=()
for d in /proc/[0-9]*/task/[0-9]*; do
  p=${d#/proc/} p=${p%%/*}
  [ -z "${seen[$p]-}" ] || continue
  mapfile -d '' -t e 2>/dev/null < "$d/environ" || continue
  for kv in "${e[@]}"; do
    if [ "$kv" = ` + shellQuote(mark) + ` ]; then seen[$p]=1 left+=("$p"); break; fi
  done
done
echo "${#left[@]} ${left[*]}"
if ((${#left[@]})); then kill -9 "${left[@]}" 2>/dev/null; fi
true`})
	return strings.TrimSpace(r.stdout)
}

// MainExit returns the path of package mainexit's program, built for the
// test (see BuildMainExit).
func MainExit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mainexit")
	if err := BuildMainExit(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// MainExitAsOthers is MainExit for a test that runs the program, and
// others of its own, as another user than root: it skips unless the test
// runs as root, and builds the program in dir, which any user can search
// and read (a test's other programs go there too).
func MainExitAsOthers(t *testing.T) (dir, bin string) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if os.Geteuid() != 0 {
		t.Skip("runs processes as another user: needs root")
	}
	dir = t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin = filepath.Join(dir, "mainexit")
	if err := BuildMainExit(bin); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// WaitMainEnded waits for the main thread of process pid to end while
// other threads of it live on (see MainExit): its stat shows a zombie
// with more than one thread (field 20).
func WaitMainEnded(t *testing.T, pid int) {
	t.Helper()
	for i := 0; ; i++ {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if i := bytes.LastIndexByte(data, ')'); err == nil && i >= 0 {
			if f := strings.Fields(string(data[i+1:])); len(f) > 17 && f[0] == "Z" {
				if n, _ := strconv.Atoi(f[17]); n > 1 {
					return
				}
			}
		}
		if i == 500 {
			t.Fatalf("the main thread of %d did not end", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BuildMainExit builds package mainexit's program at path, for the test's
// machine and without cgo: a static program, for any image.
func BuildMainExit(path string) error {
	build := exec.Command("go", "build", "-o", path, "github.com/nixflow/nixflow/executors/executortest/mainexit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building mainexit: %v\n%s", err, out)
	}
	return nil
}

// entry describes a file for comparison: type, permissions, and content
// or link target.
type entry struct {
	mode fs.FileMode
	data string
}

// snapshot describes the tree at root, by slash-separated relative path.
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		e := entry{mode: info.Mode() & (fs.ModeType | fs.ModePerm)}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.data, err = os.Readlink(p)
		case info.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(p)
			e.data = string(b)
		}
		m[filepath.ToSlash(rel)] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func compareTrees(t *testing.T, got, want string) {
	t.Helper()
	g, w := snapshot(t, got), snapshot(t, want)
	for p, we := range w {
		ge, ok := g[p]
		switch {
		case !ok:
			t.Errorf("%s: missing from %s", p, got)
		case ge.mode != we.mode:
			t.Errorf("%s: mode %v, want %v", p, ge.mode, we.mode)
		case ge.data != we.data:
			t.Errorf("%s: content or target %q, want %q", p, ge.data, we.data)
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("%s: unexpected in %s", p, got)
		}
	}
}

// makeTree creates a tree with the cases the copies must keep.
func makeTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	for _, f := range []struct {
		path string
		mode fs.FileMode
		data string
	}{
		{"bin/run.sh", 0o755, "#!/bin/sh\necho ran\n"},
		{"secret", 0o600, "s3cret"},
		{"nested/a/b/c.txt", 0o644, "deep\n"},
		{"nested/a/b/empty.txt", 0o644, ""},
	} {
		p := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"empty", "nested/empty"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("nested/a/b/c.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("does-not-exist", filepath.Join(root, "nested/dangling")); err != nil {
		t.Fatal(err)
	}
	// A read-only directory must be copied with its contents.
	if err := os.MkdirAll(filepath.Join(root, "ro"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ro/f"), []byte("ro"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "ro"), 0o755) })
	return root
}

func (s *suite) testCopyTree(t *testing.T) {
	w := s.setup(t).prepare("copytree")
	ctx := context.Background()
	src := makeTree(t)
	if err := w.CopyIn(ctx, src, "in/tree"); err != nil {
		t.Fatalf("CopyIn: %v", err)
	}
	// Seen from a step.
	r := w.mustRun(step{script: `cd in/tree
test -x bin/run.sh && bin/run.sh
stat -c '%a %F %n' secret bin/run.sh link empty nested/a/b/c.txt
readlink link; readlink nested/dangling
test -d nested/empty
cat link`})
	want := "ran\n600 regular file secret\n755 regular file bin/run.sh\n777 symbolic link link\n755 directory empty\n644 regular file nested/a/b/c.txt\nnested/a/b/c.txt\ndoes-not-exist\ndeep\n"
	if r.stdout != want {
		t.Errorf("in the workspace:\n%s\nwant:\n%s", r.stdout, want)
	}
	out := filepath.Join(t.TempDir(), "out", "tree")
	if err := w.CopyOut(ctx, "in/tree", out); err != nil {
		t.Fatalf("CopyOut: %v", err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(out, "ro"), 0o755) })
	compareTrees(t, out, src)

	// Copying into an existing directory merges.
	if err := w.CopyIn(ctx, filepath.Join(src, "nested"), "in/tree/bin"); err != nil {
		t.Fatalf("CopyIn into an existing directory: %v", err)
	}
	w.mustRun(step{script: `test -x in/tree/bin/run.sh; test -f in/tree/bin/a/b/c.txt; test -d in/tree/bin/empty`})
}

func (s *suite) testCopyFile(t *testing.T) {
	w := s.setup(t).prepare("copyfile")
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "tool")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho tool\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := w.CopyIn(ctx, src, "a/b/tool"); err != nil {
		t.Fatalf("CopyIn: %v", err)
	}
	if r := w.mustRun(step{script: `a/b/tool; stat -c %a a/b/tool`}); r.stdout != "tool\n700\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	// Replacing a file, at the same path.
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho tool 2\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := w.CopyIn(ctx, src, "a/b/tool"); err != nil {
		t.Fatalf("CopyIn again: %v", err)
	}
	if r := w.mustRun(step{script: `a/b/tool`}); r.stdout != "tool 2\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	w.mustRun(step{script: `printf 'made in step' > made.txt; chmod 640 made.txt`})
	dst := filepath.Join(dir, "x", "y", "made.txt")
	for range 2 { // the second time replaces the file
		if err := w.CopyOut(ctx, "made.txt", dst); err != nil {
			t.Fatalf("CopyOut: %v", err)
		}
	}
	b, err := os.ReadFile(dst)
	if err != nil || string(b) != "made in step" {
		t.Errorf("copied out %q, %v", b, err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("copied out mode %v, %v; want 0640", fi.Mode(), err)
	}
}

func (s *suite) testCopyErrors(t *testing.T) {
	w := s.setup(t).prepare("copyerr")
	ctx := context.Background()
	dir := t.TempDir()
	err := w.CopyOut(ctx, "no/such/file", filepath.Join(dir, "x"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CopyOut of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CopyOut of a missing file created its destination")
	}
	if err := w.CopyOut(ctx, path.Join(w.TempDir(), "no-such-file"), filepath.Join(dir, "y")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CopyOut of a missing file in TempDir: %v, want fs.ErrNotExist", err)
	}
	if err := w.CopyIn(ctx, filepath.Join(dir, "no-such-file"), "x"); err == nil {
		t.Errorf("CopyIn of a missing file succeeded")
	}
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{"/abs", "../escape", "a/../../escape"} {
		if err := w.CopyIn(ctx, f, dst); err == nil {
			t.Errorf("CopyIn to %q succeeded", dst)
		}
	}
	if err := w.CopyOut(ctx, "../escape", filepath.Join(dir, "z")); err == nil {
		t.Errorf("CopyOut from %q succeeded", "../escape")
	}
}

// testCopyOutThroughLinks copies out paths that go through symbolic
// links a step made: a relative one that stays in the workspace is
// followed, on the way to the path as for the path itself; one that leads
// out of it (to /etc), and an absolute one even into the workspace (its
// meaning depends on where the workspace is: the local executor's
// os.Root refuses it), are refused as executors.ErrOutside, and nothing
// of what they lead to is copied.
func (s *suite) testCopyOutThroughLinks(t *testing.T) {
	if s.ByHooks {
		t.Skip("the executor's hooks copy: what they refuse is theirs to keep")
	}
	w := s.setup(t).prepare("throughlinks")
	w.mustRun(step{script: `mkdir -p real/sub; echo inside > real/sub/f; ln -s real lnk; ln -s /etc etc; ln -s /etc/passwd pw; ln -s "$PWD/real" abs; ln -s "$PWD/real/sub/f" absf; ln -s absf viarel; ln -s abs/sub/f intoabs; ln -s "../${PWD##*/}/real" reenter`})
	ctx := context.Background()
	dir := t.TempDir()
	for _, src := range []string{"lnk/sub/f", "lnk/sub"} {
		dst := filepath.Join(dir, strings.ReplaceAll(src, "/", "-"))
		if err := w.CopyOut(ctx, src, dst); err != nil {
			t.Errorf("CopyOut(%q) through a link inside the workspace: %v", src, err)
			continue
		}
		f := dst
		if src == "lnk/sub" {
			f = filepath.Join(dst, "f")
		}
		if data, err := os.ReadFile(f); err != nil || string(data) != "inside\n" {
			t.Errorf("CopyOut(%q): %q, %v; want the file's data", src, data, err)
		}
	}
	for _, src := range []string{"etc/passwd", "etc", "pw", "abs/sub/f", "abs", "absf", "viarel", "intoabs", "reenter/sub/f", "reenter"} {
		dst := filepath.Join(dir, "out-"+strings.ReplaceAll(src, "/", "-"))
		if err := w.CopyOut(ctx, src, dst); !errors.Is(err, executors.ErrOutside) {
			t.Errorf("CopyOut(%q) through a link out or an absolute one: %v, want executors.ErrOutside", src, err)
		}
		if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("CopyOut(%q) through a link out or an absolute one copied something", src)
		}
	}
}

// testCopyOutHardLinks copies out a tree in which a step gave a file two
// names: both arrive, each with the data (a tar stream sends the second
// name as a link to the first).
func (s *suite) testCopyOutHardLinks(t *testing.T) {
	w := s.setup(t).prepare("hardlinks")
	w.mustRun(step{script: `mkdir -p out/sub; echo data > out/a; chmod 640 out/a; ln out/a out/sub/b; ln out/a out/c`})
	dst := filepath.Join(t.TempDir(), "out")
	if err := w.CopyOut(context.Background(), "out", dst); err != nil {
		t.Fatalf("CopyOut: %v", err)
	}
	for _, name := range []string{"a", "sub/b", "c"} {
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(b) != "data\n" {
			t.Errorf("%s: %q, %v", name, b, err)
			continue
		}
		if fi, err := os.Stat(filepath.Join(dst, name)); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v, %v; want 0640", name, fi.Mode(), err)
		}
	}
}

// copyInWorkspace prepares job's workspace for a scenario of what CopyIn
// refuses, with "T=" and its temporary directory for the steps'
// environment. Hooks copy as they like: their executor skips it.
func (s *suite) copyInWorkspace(t *testing.T, job string) (*workspace, string) {
	if s.ByHooks {
		t.Skip("the executor's hooks copy: what they refuse is theirs to keep")
	}
	w := s.setup(t).prepare(job)
	return w, "T=" + w.TempDir()
}

// testCopyInTheWay copies where something in the workspace is in the
// way: CopyIn fails, and writes nothing out of the workspace, nor over
// what is there. The runner then tells the workflow what stands where
// (actions' inTheWay); an executor that merged a file into a directory,
// or wrote through a symbolic link out of the workspace, would hide that.
func (s *suite) testCopyInTheWay(t *testing.T) {
	w, tmp := s.copyInWorkspace(t, "intheway")
	ctx := context.Background()
	w.mustRun(step{script: `mkdir "$T/outside"; ln -s "$T/outside" esc; echo plain > plain; mkdir adir`, env: []string{tmp}})
	src := makeTree(t)
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, []byte("f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ src, dst string }{
		{f, "esc/f"},       // through a link out of the workspace
		{src, "esc"},       // into a link out of the workspace
		{f, "plain/f"},     // under a file
		{src, "plain"},     // a directory over a file
		{src, "plain/sub"}, // a directory under a file
		{f, "adir"},        // a file over a directory
	} {
		if err := w.CopyIn(ctx, c.src, c.dst); err == nil {
			t.Errorf("CopyIn of %s to %q succeeded", filepath.Base(c.src), c.dst)
		}
	}
	r := w.mustRun(step{script: `ls -A "$T/outside"; cat plain; ls -A adir; readlink esc | sed "s|^$T|T|"`, env: []string{tmp}})
	if want := "plain\nT/outside\n"; r.stdout != want {
		t.Errorf("after the copies:\n%s\nwant:\n%s", r.stdout, want)
	}
}

// testCopyInMerge copies a tree into directories already in the
// workspace. Below their top, a symbolic link or a file where a
// directory of the tree goes, or a directory where a file goes, is in
// the way: CopyIn says so with an executors.InTheWayError, before it
// writes anything (no link written through or replaced, no file
// replaced). A tree that fits merges: what the workspace held stays,
// files and links where the tree's files go are replaced (a link's
// target left alone), and a directory both have takes the tree's mode
// (as tar and cp -a give it).
func (s *suite) testCopyInMerge(t *testing.T) {
	w, tmp := s.copyInWorkspace(t, "merge")
	ctx := context.Background()
	w.mustRun(step{script: `mkdir "$T/outside" adir m1 m2 m3 m3/secret
ln -s ../adir m1/bin
echo f > m2/nested
echo k > m3/secret/k
mkdir -p m4/nested/a/b m4/bin
echo keep > m4/nested/a/b/keep
echo old > m4/nested/a/b/c.txt
chmod 700 m4/nested
ln -s "$T/outside/s" m4/secret`, env: []string{tmp}})
	src := makeTree(t)
	for _, c := range []struct{ dst, why string }{
		{"m1", `"m1/bin" in the workspace is a symbolic link, where a directory of the artifact goes`},
		{"m2", `"m2/nested" in the workspace is a file, where a directory of the artifact goes`},
		{"m3", `"m3/secret" in the workspace is a directory, where a file of the artifact goes`},
	} {
		err := w.CopyIn(ctx, src, c.dst)
		var itw *executors.InTheWayError
		if !errors.As(err, &itw) || itw.Reason != c.why {
			t.Errorf("CopyIn to %q: %v; want an InTheWayError %q", c.dst, err, c.why)
		}
	}
	if err := w.CopyIn(ctx, src, "m4"); err != nil {
		t.Fatalf("CopyIn to m4: %v", err)
	}
	// Nothing of the checks is left in the temporary directory either.
	r := w.mustRun(step{script: `ls -A "$T" | grep -v '^outside$' || true; ls -A "$T/outside"; ls -A adir m1 m2 m3 m3/secret; cat m2/nested m3/secret/k
cd m4; cat nested/a/b/keep nested/a/b/c.txt secret; echo; stat -c %F secret bin/run.sh; stat -c %a nested`, env: []string{tmp}})
	want := "adir:\n\nm1:\nbin\n\nm2:\nnested\n\nm3:\nsecret\n\nm3/secret:\nk\nf\nk\n" +
		"keep\ndeep\ns3cret\nregular file\nregular file\n755\n"
	if r.stdout != want {
		t.Errorf("after the copies:\n%s\nwant:\n%s", r.stdout, want)
	}
}

func (s *suite) testTempDir(t *testing.T) {
	w := s.setup(t).prepare("temp")
	if w.TempDir() == w.Dir() || strings.HasPrefix(w.TempDir(), strings.TrimSuffix(w.Dir(), "/")+"/") {
		t.Errorf("TempDir %q is not outside Dir %q", w.TempDir(), w.Dir())
	}
	w.mustRun(step{script: `test -d "$T" && test -w "$T"; printf 'KEY=value\n' >> "$T/env"`, env: []string{"T=" + w.TempDir()}})
	dst := filepath.Join(t.TempDir(), "env")
	if err := w.CopyOut(context.Background(), path.Join(w.TempDir(), "env"), dst); err != nil {
		t.Fatalf("CopyOut from TempDir: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "KEY=value\n" {
		t.Errorf("copied out %q", b)
	}
}

func (s *suite) testTeardown(t *testing.T) {
	e := s.setup(t)
	w := e.prepare("again")
	w.mustRun(step{script: `echo data > file; mkdir -p d/e; printf x > "$T/x"`, env: []string{"T=" + w.TempDir()}})
	w.teardown(false)
	w = e.prepare("again")
	r := w.mustRun(step{script: `ls -A; ls -A "$T"`, env: []string{"T=" + w.TempDir()}})
	if r.stdout != "" {
		t.Errorf("the new workspace is not empty: %q", r.stdout)
	}
	w.teardown(true) // keep: the backend decides what it can keep

	k := e.prepare("kept")
	k.teardown(true)
}

func (s *suite) testTeardownReadOnly(t *testing.T) {
	e := s.setup(t)
	w := e.prepare("readonly")
	w.mustRun(step{script: `mkdir -p ro/sub; echo x > ro/sub/f; chmod 0400 ro/sub/f; chmod 0500 ro/sub; chmod 0 ro`})
	w.teardown(false)
	e.prepare("readonly")
}

func (s *suite) testTeardownWhileStopping(t *testing.T) {
	e := s.setup(t)
	w := e.prepare("stopping")
	w.stopWhenReady(step{
		script: `trap "" INT TERM; echo ready; while :; do sleep 0.05; done`,
		stop:   executors.Signals{FirstSignalInterrupt: true, InterruptGrace: grace, TerminateGrace: grace},
	}, func() {
		// Teardown may run while Run is still returning.
		w.teardown(false)
	})
	e.prepare("stopping")
}

// testTeardownSparesOtherJobs tears down job "a" while a step of job
// "a.b" (a name that starts with a's) runs: that step goes on to its end.
func (s *suite) testTeardownSparesOtherJobs(t *testing.T) {
	e := s.setup(t)
	a, ab := e.prepare("a"), e.prepare("a.b")
	a.mustRun(step{script: `true`})
	out := newReadyWriter()
	done := make(chan result, 1)
	go func() {
		// It ends when told, after a's teardown: a step that ended on its
		// own could end before a slow teardown, which then tested nothing.
		done <- ab.exec(context.Background(), step{script: `echo ready; for i in $(seq 600); do [ -e go ] && break; sleep 0.05; done; [ -e go ] && echo survived`, stdout: out})
	}()
	select {
	case <-out.ready:
	case r := <-done:
		t.Fatalf("a.b's step returned before it was ready: %+v, err %v", r.Result, r.err)
	case <-time.After(readyTimeout):
		t.Fatalf("a.b's step: not ready after %v", readyTimeout)
	}
	a.teardown(false)
	goFile := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ab.CopyIn(context.Background(), goFile, "go"); err != nil {
		t.Fatalf("CopyIn while a.b's step runs: %v", err)
	}
	r := <-done
	out.mu.Lock()
	got := out.buf.String()
	out.mu.Unlock()
	if r.err != nil || r.ExitCode != 0 || got != "ready\nsurvived\n" {
		t.Errorf("a.b's step, with a torn down while it ran: exit status %d, err %v, output %q (stderr %q)", r.ExitCode, r.err, got, r.stderr)
	}
	ab.teardown(false)
}

func (s *suite) testConcurrentJobs(t *testing.T) {
	e := s.setup(t)
	const n = 4
	var wg sync.WaitGroup
	dirs := make([]string, n) // where and dir: containers may all use one path
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			job := fmt.Sprintf("job%d", i)
			ws, err := e.ex.Prepare(context.Background(), executors.JobSpec{RunID: "conformance", Job: job, RunDir: e.runDir})
			if err != nil {
				errs[i] = err
				return
			}
			defer func() {
				if err := ws.Teardown(context.Background(), false); err != nil && errs[i] == nil {
					errs[i] = err
				}
			}()
			dirs[i] = ws.Where() + ":" + ws.Dir()
			var out bytes.Buffer
			cmd := executors.Command{
				Argv:   argv(`echo "$JOB" > mine; sleep 0.1; ls; cat mine`),
				Env:    append(baseEnv(), "JOB="+job),
				Stdout: &out, Stderr: io.Discard,
			}
			res, err := ws.Run(context.Background(), cmd)
			switch {
			case err != nil:
				errs[i] = err
			case res.ExitCode != 0 || out.String() != "mine\n"+job+"\n":
				errs[i] = fmt.Errorf("exit status %d, output %q", res.ExitCode, out.String())
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("job%d: %v", i, err)
		}
	}
	slices.Sort(dirs)
	if len(slices.Compact(dirs)) != n {
		t.Errorf("workspaces are not distinct: %q", dirs)
	}
}

// MakeRepo makes a git repository with a committed file, a modified one,
// an untracked one and an ignored one.
func MakeRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not on PATH")
	}
	dir := t.TempDir()
	gitRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitRun("init", "-q")
	write := func(name, data string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(".gitignore", "secret.env\n", 0o644)
	write("src/main.sh", "echo committed\n", 0o755)
	write("changed.txt", "old\n", 0o644)
	gitRun("add", ".")
	gitRun("commit", "-q", "-m", "init")
	write("changed.txt", "new\n", 0o644)
	write("untracked.txt", "untracked\n", 0o644)
	write("secret.env", "TOKEN=hunter2\n", 0o600)
	return dir
}

// testCopyRepo checks that a workspace with CopyRepo starts from the
// repository as git sees it: committed, modified and untracked files with
// their modes, ignored files absent.
func (s *suite) testCopyRepo(t *testing.T) {
	repo := MakeRepo(t)
	w := s.setup(t).prepareSpec(executors.JobSpec{Job: "repo", CopyRepo: true, RepoDir: repo})
	r := w.mustRun(step{script: `cat src/main.sh changed.txt untracked.txt; test -x src/main.sh && echo executable; test -e secret.env && echo LEAKED || echo no-ignored`})
	want := "echo committed\nnew\nuntracked\nexecutable\nno-ignored\n"
	if r.stdout != want {
		t.Errorf("workspace from the repository: stdout = %q, want %q", r.stdout, want)
	}
}

// testControlFiles checks that TempDir copies out whole, with every file a
// step wrote there, in one CopyOut (the runner reads JOB_ENV, JOB_PATH and
// JOB_OUTPUT so).
func (s *suite) testControlFiles(t *testing.T) {
	w := s.setup(t).prepare("control")
	w.mustRun(step{script: `printf 'A=1\n' >> "$T/env"; printf '/x\n' >> "$T/path"; printf 'k=v\n' >> "$T/output"`, env: []string{"T=" + w.TempDir()}})
	dst := filepath.Join(t.TempDir(), "ctl")
	if err := w.CopyOut(context.Background(), w.TempDir(), dst); err != nil {
		t.Fatalf("CopyOut(TempDir): %v", err)
	}
	for name, want := range map[string]string{"env": "A=1\n", "path": "/x\n", "output": "k=v\n"} {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
}

// testPrepareCancelled checks that Prepare with a done context fails with
// the context's error and leaves no workspace behind.
func (s *suite) testPrepareCancelled(t *testing.T) {
	e := s.setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ws, err := e.ex.Prepare(ctx, executors.JobSpec{RunID: "conformance", Job: "cancelled", RunDir: e.runDir})
	if err == nil {
		ws.Teardown(context.Background(), false)
		t.Fatal("Prepare with a cancelled context succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Prepare with a cancelled context: %v, want an error wrapping context.Canceled", err)
	}
	// The job can be prepared afterwards: nothing half-made is in the way.
	e.prepare("cancelled")
}

// testTeardownKeep checks with the backend's own means that Teardown
// removes a workspace, and keeps it when asked.
func (s *suite) testTeardownKeep(t *testing.T) {
	if s.ReadKept == nil {
		t.Skip("the backend gives no way to look at a torn down workspace")
	}
	e := s.setup(t)
	for _, keep := range []bool{false, true} {
		job := fmt.Sprintf("keep-%v", keep)
		w := e.prepare(job)
		w.mustRun(step{script: `mkdir -p sub; echo data > sub/file`})
		w.teardown(keep)
		b, err := s.ReadKept(t, w.Workspace, "sub/file")
		switch {
		case keep && (err != nil || string(b) != "data\n"):
			t.Errorf("after Teardown(keep=true): %q, %v; want the workspace kept", b, err)
		case !keep && !errors.Is(err, fs.ErrNotExist):
			t.Errorf("after Teardown(keep=false): %q, %v; want the workspace gone", b, err)
		}
	}
}
