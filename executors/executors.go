// Package executors defines the contract between the step runner and the
// places steps run in (the local machine, an OCI container, an SSH host, an
// EC2 instance), and the registry that maps an executor type to its backend.
//
// The contract is deliberately small: prepare a workspace for one job, run
// one step at a time in it, copy files in and out, and tear it down. The
// runner (package actions) owns everything else: conditions, retry,
// timeouts, environment layering and output handling. Executors know nothing
// of the job graph.
package executors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
)

// JobSpec describes the job whose workspace an executor prepares.
type JobSpec struct {
	// RunID identifies the run; executors use it to label what they create
	// (containers, instances) so that leftovers can be found.
	RunID string
	// Job is the job's name.
	Job string
	// RunDir is the run's directory on the host running nixflow
	// ($XDG_STATE_HOME/nixflow/runs/<run-id>).
	RunDir string
	// RepoDir is the working tree a job starts from when CopyRepo is set.
	RepoDir string
	// CopyRepo starts the workspace from RepoDir as git sees it; otherwise
	// the workspace starts empty.
	CopyRepo bool
	// Exclude lists host directories never copied into a workspace, should
	// they lie inside RepoDir (nixflow's own state and cache).
	Exclude []string
	// StorePaths are the Nix store paths the job's steps need (their deps:
	// the roots of the closure), realised on this machine before Prepare.
	// A backend whose steps do not see this machine's /nix/store makes
	// them, with their closure, available where the steps run (a read-only
	// mount, nix copy), or fails naming what is missing.
	StorePaths []string
	// ControlFiles names the files the steps keep in the workspace's
	// temporary directory (JOB_ENV and the others): a backend may keep
	// them, emptied, for a later job, rather than remove them and let
	// the next job's steps create them again.
	ControlFiles []string
	// Log reports what Prepare is doing (pulling an image, creating a
	// container, copying the workspace), one short line per call; the
	// lines reach the console and the events file. Backends call it
	// through Logf, which allows it to be nil.
	Log func(msg string)
}

// Logf reports Prepare's progress through s.Log, if set.
func (s JobSpec) Logf(format string, args ...any) {
	if s.Log != nil {
		s.Log(fmt.Sprintf(format, args...))
	}
}

// Signals is the escalation used to stop a step: first Interrupt, then
// SIGTERM after InterruptGrace, then SIGKILL after TerminateGrace. A zero
// grace means the next signal follows at once.
type Signals struct {
	// FirstSignalInterrupt selects SIGINT as the first signal (cancellation
	// by the user); otherwise the first signal is SIGTERM (a timeout).
	FirstSignalInterrupt bool
	InterruptGrace       time.Duration
	TerminateGrace       time.Duration
	// Hurry, once closed, cuts the graces short: the next signals follow
	// at once (the user insisted with a second Ctrl-C). Nil: never.
	Hurry <-chan struct{}
}

// Command is one step to run in a workspace.
type Command struct {
	// Argv is the program and its arguments, for example
	// ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script].
	// The runner decides it, so that every backend runs steps alike.
	Argv []string
	// Env is the environment the workflow declares for the step, as
	// KEY=VALUE pairs. The backend lays it over the target's own base
	// environment (nixflow's for the local executor, the image's ENV for a
	// container, the login environment of a remote host), the declared
	// values winning; it adds nothing else but, where a backend needs one,
	// a single marker variable to find the step's processes (the local
	// executor's NIXFLOW_STEP_COOKIE). Values may be secrets: a backend
	// never puts them on a command line.
	Env []string
	// PathPrepend lists directories to put in front of the step's PATH,
	// first the highest (the bin directories of the step's deps, then the
	// JOB_PATH entries). The PATH they go in front of is Env's PATH if Env
	// declares one, else the base environment's.
	PathPrepend []string
	// Dir is the working directory, a relative slash-separated path inside
	// the workspace directory (empty for the workspace itself); an
	// absolute path or one that leaves the workspace is an error.
	Dir string
	// Stdout and Stderr receive the step's output as it is produced. They
	// are never written concurrently with themselves; Run returns after both have seen
	// the end of their stream, or a bounded time after the step's processes
	// are gone (a process beyond reach may hold a pipe open forever).
	Stdout, Stderr io.Writer
	// Stop returns the signal escalation to use once ctx is done. It is
	// called at most once, after ctx is done, so that the caller can tell
	// a timeout from a cancellation at that moment. A nil Stop means
	// SIGTERM, then SIGKILL at once.
	Stop func() Signals
}

// LookAhead is implemented by Command.Stdout and Stderr writers that
// need to see output before it is written. An executor that reads both
// streams of a step together (the local one) shows each writer what it
// read for it, from both streams, before writing any of it: the runner
// takes ::add-mask:: announcements from it, so that a value announced on
// one stream is masked on the other from the next line on, whichever
// stream's bytes are read first. Bytes held back for a later write are
// shown again with what follows them: LookAhead must be idempotent.
type LookAhead interface {
	LookAhead(p []byte)
}

// Result is the outcome of one command.
type Result struct {
	// ExitCode is the exit status of the step's shell; 128+N when it was
	// killed by signal N.
	ExitCode int
	// Stopped is set when the command was stopped because ctx was done.
	Stopped bool
}

// Workspace is a prepared job workspace. Its methods are called from one
// goroutine at a time (the job's), except Teardown, which may be called
// while Run is still returning after a cancellation.
type Workspace interface {
	// Dir is the workspace directory as the steps see it.
	Dir() string
	// Where says in a few words where the steps run, for the summary and
	// the events: "local", "docker container 3f2a9c1b0d4e", "ci@build1".
	Where() string
	// TempDir is a private directory for nixflow's control files (JOB_ENV,
	// JOB_PATH, JOB_OUTPUT), as the steps see it, outside Dir.
	TempDir() string
	// Run runs one command to completion and returns its result. A non-zero
	// exit is not an error: err is reserved for infrastructure failures
	// (the command could not be started, the connection broke, writing its
	// output failed; in the last case the Result is still valid); one
	// for which errors.Is(err, ErrWorkspaceLost) holds says the workspace
	// is gone for good. When ctx
	// is done, Run stops the command's whole process tree with the
	// escalation from Command.Stop and returns with Result.Stopped set; when
	// ctx is done before Run is called, nothing starts and Run returns
	// Stopped with ExitCode -1. No process started by the command survives
	// Run's return.
	Run(ctx context.Context, cmd Command) (Result, error)
	// CopyIn copies the host path src (file or directory) to dst, a path
	// relative to Dir, creating parents. Modes, symlinks inside the tree and
	// empty directories are kept; a symlink given as src itself is
	// followed; an existing file at dst is replaced and an existing
	// directory is merged into.
	CopyIn(ctx context.Context, src, dst string) error
	// CopyOut copies src, a path relative to Dir, or TempDir or an absolute
	// path under it, to the host path dst, creating dst's parents, with the same
	// rules as CopyIn. A missing src is reported with an error for which
	// errors.Is(err, fs.ErrNotExist) holds, a src that leads outside the
	// workspace (a symbolic link a step made) with one for which
	// errors.Is(err, ErrOutside) holds: both are the step's doing.
	CopyOut(ctx context.Context, src, dst string) error
	// Teardown releases everything the workspace holds. It is always
	// called exactly once, with a context that is not cancelled with the
	// run; keep asks to leave the workspace's files in place for
	// inspection where the backend can.
	Teardown(ctx context.Context, keep bool) error
}

// TempFileReader is implemented by workspaces whose temporary directory
// the runner can read where it is (the local one): after each step it
// reads the control files with it instead of copying TempDir out.
type TempFileReader interface {
	// ReadTempFile reads the file name (one path element) in TempDir
	// as CopyOut would copy it: a missing file, and one that is no
	// regular file nor directory (a FIFO a step made), is reported with
	// an error for which errors.Is(err, fs.ErrNotExist) holds, one that
	// leads outside TempDir with one for which errors.Is(err,
	// ErrOutside) holds.
	ReadTempFile(name string) ([]byte, error)
}

// Pinger is implemented by workspaces on another host, whose copies can
// hang with the connection: the runner, saving a job's outputs when told
// to hurry (a second Ctrl-C), asks whether the host still answers, and
// stops saving if it does not.
type Pinger interface {
	// Ping fails when the workspace's host does not answer within a few
	// seconds; it then gives up the connection, so that what waits on it
	// fails at once.
	Ping() error
}

// Executor prepares workspaces. One Executor value serves all the jobs of a
// run that name the same executor configuration, concurrently: Prepare is
// safe for concurrent use.
type Executor interface {
	// Prepare creates the job's workspace. An error is an infrastructure
	// failure: the job did not start. ctx ends with the first Ctrl-C: a
	// slow pull, copy or boot stops then, and Prepare returns an error
	// for which errors.Is(err, ctx.Err()) holds. Prepare must clean up
	// after itself when it fails, whatever the reason.
	Prepare(ctx context.Context, spec JobSpec) (Workspace, error)
	// Close releases what the executor shares between jobs (a shared
	// container, an instance). It is called once at the end of the run
	// with a fresh context, after every workspace was torn down.
	Close(ctx context.Context) error
}

// Params is what a backend's factory gets: one executor configuration of
// a plan, and the run it serves.
type Params struct {
	// Config is the executor's configuration from the plan, as decoded by
	// the compiler (for example *compiler.OCIExecutor). Backends assert
	// the type they registered for.
	Config any
	// Name is the executor's name in the plan (may be empty).
	Name string
	// RunID and RunDir identify the run, for labels and records of what
	// the backend creates.
	RunID, RunDir string
	// Environ is nixflow's own environment. Only the local backend takes
	// its base environment from it; remote backends must not.
	Environ []string
	// Logger is named after the backend and carries the run id.
	Logger hclog.Logger
}

// Factory builds an Executor for one executor configuration of a plan. It
// must not do slow work (connect, pull): that belongs to Prepare, which
// can be cancelled and reports progress.
type Factory func(p Params) (Executor, error)

// Registry maps executor types ("local", "oci", ...) to their factories.
// It is built once at start-up and read-only afterwards.
type Registry struct {
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{}}
}

// Register adds a backend. Registering a type twice panics: it is a
// programming error, caught at start-up.
func (r *Registry) Register(typ string, f Factory) {
	if _, dup := r.factories[typ]; dup {
		panic(fmt.Sprintf("executors: type %q registered twice", typ))
	}
	r.factories[typ] = f
}

// Has reports whether typ has a backend.
func (r *Registry) Has(typ string) bool {
	_, ok := r.factories[typ]
	return ok
}

// Types lists the registered types, sorted.
func (r *Registry) Types() []string {
	types := make([]string, 0, len(r.factories))
	for t := range r.factories {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

// ErrOutside is a path that goes through a symbolic link that is
// absolute or leads outside the workspace; see Workspace.CopyOut. Its text
// ends a sentence about a link: "... a symbolic link that %w".
var ErrOutside = errors.New("is absolute or leads outside the workspace")

// ErrNoWorkdir is wrapped by the error of Workspace.Run when the step's
// working directory (Command.Dir) is not a directory of the workspace:
// the step is not run. It is the step's doing (an earlier step did not
// make the directory), not the executor's.
var ErrNoWorkdir = errors.New("no such working directory")

// ErrWorkspaceLost is wrapped by the error of Workspace.Run when the
// workspace is gone with the machine it was on (an SSH host that went
// down, its connection lost): the step did not fail, its host did. The
// runner may then tear the workspace down (best effort) and prepare the
// job again, where the executor's Prepare finds a machine that is up.
var ErrWorkspaceLost = errors.New("workspace lost")

// ErrUnsupported is returned (wrapped) by New for a type that has no
// backend in this build.
var ErrUnsupported = errors.New("executor type not supported")

// New builds an executor of the given type.
func (r *Registry) New(typ string, p Params) (Executor, error) {
	f, ok := r.factories[typ]
	if !ok {
		return nil, fmt.Errorf("%w: %q (available: %v)", ErrUnsupported, typ, r.Types())
	}
	if p.Logger == nil {
		p.Logger = hclog.NewNullLogger()
	}
	return f(p)
}
