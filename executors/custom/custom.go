// Package custom is the executor whose every operation is a bash hook
// written by the user: it lets a workflow drive Kubernetes, Nomad, a
// build farm or anything else with that system's own command-line tool,
// as GitLab Runner's custom executor and nixactions' mkExecutor do.
//
// # Protocol
//
// Hooks run on the machine running nixflow, as
//
//	bash --noprofile --norc -eo pipefail -c HOOK nixflow-HOOKNAME ARGS...
//
// with the local executor's process guarantees (their own process group,
// nothing of theirs survives them), standard input from /dev/null, and
// nixflow's own environment plus the variables below. The working
// directory of a job's hooks is a private directory of the job on this
// machine (NIXFLOW_HOST_DIR), which holds a copy of the repository, as
// git sees it, when the job copies it.
//
// Every hook gets:
//
//	NIXFLOW_HOOK          the hook's name (setupJob, executeJob, ...)
//	NIXFLOW_EXECUTOR      the executor's name ("custom" if it has none)
//	NIXFLOW_RUN_ID        the run's id; WORKFLOW_ID is the same value
//	NIXFLOW_RUN_DIR       the run's directory on this machine
//	NIXFLOW_SYSTEM_FAILURE_EXIT_CODE
//	                      the status a hook exits with to say the
//	                      infrastructure failed (SystemFailureExitCode)
//	NIXFLOW_NOT_FOUND_EXIT_CODE
//	                      the status saveArtifact exits with when its
//	                      source does not exist (NotFoundExitCode)
//
// and the hooks of a job also:
//
//	NIXFLOW_JOB, JOB_NAME the job's name
//	NIXFLOW_WORKSPACE     the job's workspace as the steps see it
//	                      (WORKDIR/jobs/JOB)
//	NIXFLOW_TEMP_DIR      the job's private control directory as the steps
//	                      see it (WORKDIR/tmp/JOB), outside the workspace
//	NIXFLOW_HOST_DIR      the job's private directory on this machine
//
// WORKDIR is the executor's workdir option, or by default a directory of
// the run on this machine (NIXFLOW_RUN_DIR/custom/NAME-RANDOM/work: two
// executors of one name, say with and without copyRepo, stay apart).
//
// The hooks and when they run:
//
//	setupWorkspace    once per executor, before its first job is prepared
//	setupJob          prepare a job: create NIXFLOW_WORKSPACE (empty) and
//	                  NIXFLOW_TEMP_DIR (empty, private) where steps run
//	executeJob        run one step: "$@" is the step's command line; it
//	                  runs in NIXFLOW_STEP_DIR with the environment
//	                  NIXFLOW_STEP_ENV_FILE gives
//	saveArtifact      copy out: $1 is a path as the steps see it (in the
//	                  workspace or the control directory), $2 a path on
//	                  this machine
//	restoreArtifact   copy in: $1 is a path on this machine, $2 a path in
//	                  the workspace as the steps see it
//	cleanupJob        tear the job down: remove NIXFLOW_WORKSPACE and
//	                  NIXFLOW_TEMP_DIR, but keep the workspace when
//	                  NIXFLOW_KEEP is 1
//	cleanupWorkspace  once, at the end of the run, if setupWorkspace ran
//
// Copies follow the executor contract: parents of the destination are
// created, a file there is replaced, a directory there is merged into,
// modes and symbolic links inside a tree are kept, a symbolic link given
// as the source is followed. nixflow checks that workspace paths stay
// inside the workspace before calling the hook. When a job copies the
// repository, setupJob is followed by restoreArtifact NIXFLOW_HOST_DIR
// NIXFLOW_WORKSPACE.
//
// executeJob's environment file is a bash script of export lines (values
// in shell quoting) that sets the step's declared variables and puts the
// step's PATH additions in front of PATH: sourcing it where the step runs,
// over that place's own environment, gives the step its environment. It
// may hold secrets: it is private to nixflow's user, removed after the
// step, and a hook must not copy it anywhere it would stay, nor pass its
// values on a command line. NIXFLOW_STEP_PATH_PREPEND lists the PATH
// additions alone (colon-separated).
//
// Exit statuses: 0 is success. executeJob's status is the step's, except
// NIXFLOW_SYSTEM_FAILURE_EXIT_CODE, which fails the job as an
// infrastructure failure (exit status 3 of nixflow). Any other hook's
// non-zero status is an infrastructure failure, but saveArtifact's
// NIXFLOW_NOT_FOUND_EXIT_CODE, which reports a missing source.
//
// Output: executeJob's standard output and error are the step's. The other
// hooks' standard output and error lines are progress: those of
// setupWorkspace, setupJob and the repository copy reach the console as
// the job's preparation lines; the others go to nixflow's log (at debug
// level), and the last lines of standard error are quoted in the error
// when a hook fails.
//
// Cancellation: when a step is stopped (timeout, Ctrl-C), nixflow sends
// executeJob's process group the step's signal escalation (SIGINT or
// SIGTERM, then SIGTERM, then SIGKILL). A hook that runs the step
// elsewhere traps SIGINT and SIGTERM and stops it there (kubectl delete,
// nomad alloc signal). Teardown hooks run with a fresh context, also after
// a cancellation.
package custom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/local"
)

// Exit statuses of the protocol.
const (
	// SystemFailureExitCode is the status a hook exits with to report an
	// infrastructure failure (GitLab's SYSTEM_FAILURE_EXIT_CODE).
	SystemFailureExitCode = 222
	// NotFoundExitCode is the status saveArtifact exits with when its
	// source does not exist.
	NotFoundExitCode = 223
)

// Hooks are the bash scripts of a custom executor. ExecuteJob,
// SaveArtifact and RestoreArtifact are required; an empty hook of the
// others does nothing.
type Hooks struct {
	SetupWorkspace   string
	SetupJob         string
	ExecuteJob       string
	SaveArtifact     string
	RestoreArtifact  string
	CleanupJob       string
	CleanupWorkspace string
}

// Config is a custom executor's configuration.
type Config struct {
	// Workdir is the directory under which workspaces are made, as the
	// steps see it; empty means a directory of the run on this machine.
	Workdir string
	Hooks   Hooks
}

// Executor runs a custom executor's hooks.
type Executor struct {
	cfg     Config
	name    string
	runID   string
	runDir  string
	workdir string // as configured; empty: under hostDir
	host    *local.Executor
	logger  hclog.Logger

	// mu guards what setupWorkspace sets up; Prepare reads hostDir and
	// workdir after it, so after taking mu.
	mu        sync.Mutex
	setupDone bool
	setupErr  error
	hostDir   string              // <RunDir>/custom/<name>-<random>
	hooksWS   executors.Workspace // where executor-level hooks run
}

var _ executors.Executor = (*Executor)(nil)

// New returns a custom executor; p.Config is a *Config.
func New(p executors.Params) (executors.Executor, error) {
	cfg, ok := p.Config.(*Config)
	if !ok || cfg == nil {
		return nil, fmt.Errorf("custom executor: configuration of type %T", p.Config)
	}
	for name, h := range map[string]string{"executeJob": cfg.Hooks.ExecuteJob, "saveArtifact": cfg.Hooks.SaveArtifact, "restoreArtifact": cfg.Hooks.RestoreArtifact} {
		if strings.TrimSpace(h) == "" {
			return nil, fmt.Errorf("custom executor %q: hook %s is empty", p.Name, name)
		}
	}
	if p.RunDir == "" {
		return nil, errors.New("custom executor: empty run directory")
	}
	name := p.Name
	if name == "" {
		name = "custom"
	}
	if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("custom executor: invalid name %q", name)
	}
	if p.Logger == nil {
		p.Logger = hclog.NewNullLogger()
	}
	runDir, err := filepath.Abs(p.RunDir)
	if err != nil {
		return nil, fmt.Errorf("custom executor: %w", err)
	}
	workdir := cfg.Workdir
	if workdir != "" {
		if !path.IsAbs(workdir) {
			return nil, fmt.Errorf("custom executor %q: workdir %q is not an absolute path", p.Name, workdir)
		}
		workdir = path.Clean(workdir)
	}
	host := &local.Executor{Environ: p.Environ}
	host.Watch(p.Logger)
	return &Executor{
		cfg: *cfg, name: name, runID: p.RunID, runDir: runDir, workdir: workdir,
		host:   host,
		logger: p.Logger,
	}, nil
}

// baseEnv is what every hook gets.
func (e *Executor) baseEnv(hook string) []string {
	return []string{
		"NIXFLOW_HOOK=" + hook,
		"NIXFLOW_EXECUTOR=" + e.name,
		"NIXFLOW_RUN_ID=" + e.runID,
		"WORKFLOW_ID=" + e.runID,
		"NIXFLOW_RUN_DIR=" + e.runDir,
		"NIXFLOW_SYSTEM_FAILURE_EXIT_CODE=" + strconv.Itoa(SystemFailureExitCode),
		"NIXFLOW_NOT_FOUND_EXIT_CODE=" + strconv.Itoa(NotFoundExitCode),
	}
}

// setupWorkspace makes the executor's directory on this machine and runs
// the setupWorkspace hook, once; a run cancelled meanwhile leaves it to
// the next Prepare. It returns the directory and the workdir.
func (e *Executor) setupWorkspace(ctx context.Context, spec executors.JobSpec) (hostDir, workdir string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.setupDone {
		e.setupErr = e.setupOnce(ctx, spec)
		e.setupDone = ctx.Err() == nil || e.setupErr == nil
	}
	workdir = e.workdir
	if workdir == "" {
		workdir = filepath.Join(e.hostDir, "work")
	}
	return e.hostDir, workdir, e.setupErr
}

func (e *Executor) setupOnce(ctx context.Context, spec executors.JobSpec) error {
	if e.hooksWS == nil {
		parent := filepath.Join(e.runDir, "custom")
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("custom executor %q: %w", e.name, err)
		}
		dir, err := os.MkdirTemp(parent, e.name+"-")
		if err != nil {
			return fmt.Errorf("custom executor %q: %w", e.name, err)
		}
		ws, err := e.host.Prepare(ctx, executors.JobSpec{RunID: e.runID, Job: "executor", RunDir: dir})
		if err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("custom executor %q: %w", e.name, err)
		}
		e.hostDir, e.hooksWS = dir, ws
	}
	return e.runHook(ctx, e.hooksWS, "setupWorkspace", e.cfg.Hooks.SetupWorkspace, e.baseEnv("setupWorkspace"), nil, spec.Log)
}

// Prepare runs setupWorkspace (the first time), then setupJob and, when
// the job copies the repository, restoreArtifact.
func (e *Executor) Prepare(ctx context.Context, spec executors.JobSpec) (executors.Workspace, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("prepare custom executor %q: %w", e.name, err)
	}
	if spec.Job == "" || spec.Job == "." || spec.Job == ".." || strings.ContainsAny(spec.Job, "/\x00") {
		return nil, fmt.Errorf("prepare custom executor %q: invalid job name %q", e.name, spec.Job)
	}
	hostDir, workdir, err := e.setupWorkspace(ctx, spec)
	if err != nil {
		return nil, err
	}
	host, err := e.host.Prepare(ctx, executors.JobSpec{
		RunID: spec.RunID, Job: spec.Job, RunDir: filepath.Join(hostDir, "host"),
		RepoDir: spec.RepoDir, CopyRepo: spec.CopyRepo, Exclude: spec.Exclude,
	})
	if err != nil {
		return nil, fmt.Errorf("prepare custom executor %q: %w", e.name, err)
	}
	w := &workspace{
		e: e, job: spec.Job, host: host,
		dir:     path.Join(workdir, "jobs", spec.Job),
		tempDir: path.Join(workdir, "tmp", spec.Job),
	}
	fail := func(err error) (executors.Workspace, error) {
		cctx := context.WithoutCancel(ctx)
		if cerr := w.hook(cctx, "cleanupJob", e.cfg.Hooks.CleanupJob, nil, nil); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if herr := host.Teardown(cctx, false); herr != nil {
			err = errors.Join(err, herr)
		}
		return nil, err
	}
	if err := w.hook(ctx, "setupJob", e.cfg.Hooks.SetupJob, nil, spec.Log); err != nil {
		return fail(err)
	}
	if spec.CopyRepo {
		spec.Logf("copying the repository into %s", w.dir)
		if err := w.hook(ctx, "restoreArtifact", e.cfg.Hooks.RestoreArtifact, []string{host.Dir(), w.dir}, spec.Log); err != nil {
			return fail(err)
		}
	}
	return w, nil
}

// Close runs cleanupWorkspace if setupWorkspace ran, and removes the
// executor's directory on this machine unless a workspace was kept in it,
// and what the local executor of the hooks kept for the run.
func (e *Executor) Close(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hooksWS == nil {
		return e.host.Close(ctx)
	}
	err := e.runHook(ctx, e.hooksWS, "cleanupWorkspace", e.cfg.Hooks.CleanupWorkspace, e.baseEnv("cleanupWorkspace"), nil, nil)
	if terr := e.hooksWS.Teardown(ctx, false); terr != nil {
		err = errors.Join(err, terr)
	}
	e.hooksWS = nil
	// The host executor first, with whatever it made in the directories
	// removed below.
	err = errors.Join(err, e.host.Close(ctx))
	// Empty directories only: a kept workspace (--keep-workspace) stays.
	for _, d := range []string{"host/jobs", "host/tmp", "host", "jobs", "tmp", "work/jobs", "work/tmp", "work", ""} {
		_ = os.Remove(filepath.Join(e.hostDir, d))
	}
	return err
}

// HookError is a hook's failure: it exited with a non-zero status.
type HookError struct {
	Executor, Hook string
	ExitCode       int
	// Stderr holds the last lines of the hook's standard error.
	Stderr string
}

func (e *HookError) Error() string {
	msg := fmt.Sprintf("custom executor %q: hook %s exited with status %d", e.Executor, e.Hook, e.ExitCode)
	if e.ExitCode == SystemFailureExitCode {
		msg = fmt.Sprintf("custom executor %q: hook %s reported a system failure", e.Executor, e.Hook)
	}
	if e.Stderr != "" {
		msg += ":\n" + e.Stderr
	}
	return msg
}

// Is makes a saveArtifact that reports a missing source match
// fs.ErrNotExist.
func (e *HookError) Is(target error) bool {
	return target == fs.ErrNotExist && e.Hook == "saveArtifact" && e.ExitCode == NotFoundExitCode
}

// runHook runs one hook (other than executeJob) in ws. Its output lines go
// to logf if set, else to the logger; a non-zero exit is a *HookError.
func (e *Executor) runHook(ctx context.Context, ws executors.Workspace, name, script string, env, args []string, logf func(string)) error {
	if strings.TrimSpace(script) == "" {
		return nil
	}
	// Both streams are read at once: one line at a time reaches logf.
	var mu sync.Mutex
	sink := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if logf != nil {
			logf(line)
			return
		}
		e.logger.Debug("hook output", "hook", name, "line", line)
	}
	out := &lineWriter{emit: sink}
	errw := &lineWriter{emit: sink, tail: true}
	argv := append([]string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script, "nixflow-" + name}, args...)
	res, err := ws.Run(ctx, executors.Command{Argv: argv, Env: env, Stdout: out, Stderr: errw})
	out.flush()
	errw.flush()
	if err != nil {
		return fmt.Errorf("custom executor %q: hook %s: %w", e.name, name, err)
	}
	if res.Stopped {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("custom executor %q: hook %s: %w", e.name, name, cerr)
		}
	}
	if res.ExitCode != 0 {
		return &HookError{Executor: e.name, Hook: name, ExitCode: res.ExitCode, Stderr: errw.lastLines()}
	}
	return nil
}

// lineWriter splits output into lines for emit, keeping the last few when
// tail is set.
type lineWriter struct {
	emit func(string)
	tail bool
	buf  []byte
	last []string
}

const tailLines = 10

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *lineWriter) line(s string) {
	l.emit(s)
	if l.tail {
		l.last = append(l.last, s)
		if len(l.last) > tailLines {
			l.last = l.last[1:]
		}
	}
}

func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		l.line(string(l.buf))
		l.buf = nil
	}
}

func (l *lineWriter) lastLines() string { return strings.Join(l.last, "\n") }

var _ io.Writer = (*lineWriter)(nil)
