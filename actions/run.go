// Package actions runs a compiled plan: it walks the job graph with the dag
// scheduler, decides from each job's condition whether it runs, builds its
// environment from the layers and providers, and runs its steps one by one
// through an executor, with step conditions, retry, timeouts, JOB_ENV,
// JOB_PATH and JOB_OUTPUT, artifacts, output streaming and masking.
package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/dag"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/output"
	"github.com/nixflow/nixflow/timing"
)

// Options configure a run.
type Options struct {
	RunID  string
	RunDir string
	// RepoDir is the working tree jobs with copyRepo start from, and the
	// directory where job conditions and providers run.
	RepoDir string
	// Exclude lists directories never copied into workspaces (nixflow's
	// state and cache, should they lie inside RepoDir).
	Exclude  []string
	Registry *executors.Registry
	// MaxParallel caps running jobs; 0 means no cap.
	MaxParallel int
	// Levels runs the graph level by level instead of from a ready queue.
	Levels    bool
	Overrides Overrides
	// PassEnv names variables of nixflow's environment that remote
	// executors receive too.
	PassEnv []string
	// Environ is nixflow's own environment, inherited by local steps.
	Environ       []string
	KeepWorkspace bool
	// InterruptGrace and TerminateGrace space the signals that stop a
	// step: SIGINT (cancellation) or SIGTERM (timeout) first, then SIGTERM,
	// then SIGKILL.
	InterruptGrace, TerminateGrace time.Duration
	// Realise builds the derivations of steps' deps whose outputs are
	// missing, before the job's workspace is prepared; its error is a
	// build failure. Build output goes to log. Nil: missing deps fail.
	// root is where the outputs may be registered as garbage collector
	// roots while the job runs (removed when it ends).
	Realise func(ctx context.Context, drvs []string, root string, log func(line string)) error
	// RunHost runs a command on this machine, in dir, with a step's
	// guarantees (no process it starts outlives it; stopped by signals
	// like a step): job bash conditions and command providers. Nil: a
	// plain process group, killed when it ends.
	RunHost func(ctx context.Context, dir string, cmd executors.Command) (executors.Result, error)
	// TeardownTimeout bounds each executor teardown.
	TeardownTimeout time.Duration
	Sink            event.Sink
	Masker          *Masker
	Logger          hclog.Logger
	// Now is the clock; nil for time.Now.
	Now func() time.Time
}

// EventsFileName is the file in a run directory that records the run's
// events as JSON lines, output lines left out.
const EventsFileName = "events.jsonl"

// Result is the outcome of a run.
type Result struct {
	RunID     string          `json:"run"`
	Name      string          `json:"name"`
	Cancelled bool            `json:"cancelled,omitempty"`
	Started   time.Time       `json:"started"`
	Duration  timing.Duration `json:"duration"`
	// Jobs in plan order.
	Jobs []*JobResult `json:"jobs"`
	// Err is a run-level failure (a workflow provider), if any.
	Err    string `json:"error,omitempty"`
	Domain Domain `json:"domain,omitempty"`
}

// JobResult is the outcome of one job.
type JobResult struct {
	Job    string       `json:"job"`
	Status event.Status `json:"status"`
	// Allowed marks a failure that continueOnError allows: it counts as a
	// success for dependents and for the exit status.
	Allowed bool   `json:"allowed,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Domain  Domain `json:"domain,omitempty"`
	// Where says where the job's steps ran ("local", a container, a host).
	Where    string            `json:"where,omitempty"`
	Started  time.Time         `json:"started,omitempty"`
	Duration timing.Duration   `json:"duration"`
	Steps    []*StepResult     `json:"steps,omitempty"`
	Outputs  map[string]string `json:"-"`
}

// ok reports whether the job counts as a success for its dependents.
func (j *JobResult) ok() bool {
	return j.Status == event.StatusSuccess || (j.Status == event.StatusFailure && j.Allowed)
}

// StepResult is the outcome of one step.
type StepResult struct {
	Step     string          `json:"step"`
	Status   event.Status    `json:"status"`
	Allowed  bool            `json:"allowed,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Attempts int             `json:"attempts,omitempty"`
	ExitCode int             `json:"exitCode"`
	Duration timing.Duration `json:"duration"`
	// Tail is the last lines of output of a failed step.
	Tail []string `json:"tail,omitempty"`
	// infra marks a failure of the executor, not of the step's command:
	// the step could not run, or its host went away while it ran.
	infra bool
}

// Failed reports whether the run has a failure that is not allowed.
func (r *Result) Failed() bool {
	if r.Err != "" {
		return true
	}
	for _, j := range r.Jobs {
		if j.Status == event.StatusFailure && !j.Allowed {
			return true
		}
	}
	return false
}

// engine is the state of one run.
type engine struct {
	opts    Options
	plan    *compiler.Plan
	graph   *dag.Graph
	results map[string]*JobResult
	// cancel is done on the first interrupt: no new jobs but cleanup ones.
	cancel context.Context
	// abort is done on the second: no cleanup jobs either.
	abort   context.Context
	log     hclog.Logger
	now     func() time.Time
	workEnv *providerResult
	// jobEnv holds each job's environment below its needs' outputs and
	// its steps, resolved before any job starts.
	jobEnv map[string]envMap

	// secretNames are the names whose values are secrets whichever
	// layer gives them (see maskExported); written before jobs start.
	secretNames map[string]bool

	mu        sync.Mutex
	executors map[string]executors.Executor
	execErrs  map[string]error
}

// Run runs a plan. Cancelling cancel starts a graceful stop: running steps
// are interrupted, no new job starts except always() and cancelled() ones.
// Cancelling abort stops those too. Teardown of executors always happens,
// with fresh contexts. The error is for problems of the run itself (the
// run directory cannot be written); job failures are in the Result.
func Run(cancel, abort context.Context, plan *compiler.Plan, opts Options) (*Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Sink == nil {
		opts.Sink = event.Sinks(nil)
	}
	if opts.Masker == nil {
		opts.Masker = NewMasker()
	}
	if opts.TeardownTimeout == 0 {
		opts.TeardownTimeout = 2 * time.Minute
	}
	names := make([]string, len(plan.Jobs))
	deps := map[string][]string{}
	for i, j := range plan.Jobs {
		names[i] = j.Name
		deps[j.Name] = j.Needs
	}
	g, err := dag.New(names, deps)
	if err != nil {
		return nil, fmt.Errorf("plan graph: %w", err)
	}
	if err := os.MkdirAll(opts.RunDir, 0o700); err != nil {
		return nil, err
	}
	// The run directory keeps the run's events (not its output lines), so
	// that a report can be made of the run later.
	record, err := output.NewEventsFile(filepath.Join(opts.RunDir, EventsFileName))
	if err != nil {
		return nil, fmt.Errorf("record the run's events: %w", err)
	}
	defer record.Close()
	opts.Sink = event.Sinks{opts.Sink, record}
	e := &engine{
		opts:      opts,
		plan:      plan,
		graph:     g,
		results:   make(map[string]*JobResult, len(plan.Jobs)),
		cancel:    cancel,
		abort:     abort,
		log:       opts.Logger.Named("run").With("run_id", opts.RunID),
		now:       opts.Now,
		executors: map[string]executors.Executor{},
		execErrs:  map[string]error{},
	}
	for _, j := range plan.Jobs {
		e.results[j.Name] = &JobResult{Job: j.Name}
	}
	res := &Result{RunID: opts.RunID, Name: plan.Name, Started: e.now()}
	e.emit(event.Event{Event: event.RunStart, Message: plan.Name})

	switch err := e.prepareEnvironments(); {
	case cancel.Err() != nil:
		// Stopped while the providers ran (a slow secret manager): no
		// job starts, cleanup jobs neither.
		for _, j := range plan.Jobs {
			r := e.results[j.Name]
			r.Status, r.Reason = event.StatusCancelled, "run cancelled"
		}
	case err != nil:
		res.Err, res.Domain = opts.Masker.Mask(err.Error()), DomainEnvironment
		for _, j := range plan.Jobs {
			r := e.results[j.Name]
			r.Status, r.Reason = event.StatusSkipped, "the environment could not be prepared"
		}
	default:
		g.Walk(abort, dag.WalkOptions{MaxParallel: opts.MaxParallel, Levels: opts.Levels}, e.visit)
	}
	e.closeExecutors()

	res.Cancelled = cancel.Err() != nil
	res.Duration = timing.Duration(e.now().Sub(res.Started))
	for _, j := range plan.Jobs {
		res.Jobs = append(res.Jobs, e.results[j.Name])
	}
	end := event.Event{Event: event.RunEnd, Duration: res.Duration, Result: event.StatusSuccess, Reason: res.Err}
	switch {
	case res.Cancelled:
		end.Result = event.StatusCancelled
	case res.Failed():
		end.Result = event.StatusFailure
	}
	e.emit(end)
	maskResult(res, opts.Masker)
	if err := writeJSON(filepath.Join(opts.RunDir, ResultFileName), res); err != nil {
		return res, err
	}
	return res, nil
}

func (e *engine) emit(ev event.Event) {
	ev.Run = e.opts.RunID
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	ev.Message = e.opts.Masker.Mask(ev.Message)
	ev.Reason = e.opts.Masker.Mask(ev.Reason)
	e.opts.Sink.Emit(ev)
}

// addSecret masks a value from now on; what names it in a warning when
// the value is too short to mask.
func (e *engine) addSecret(what, value string) {
	if !e.opts.Masker.Add(value) {
		e.emit(event.Event{Event: event.Warning, Message: fmt.Sprintf("%s is shorter than %d characters and is not masked", what, minSecretLen)})
	}
}

// addNamedSecrets masks the values of secret variables, in name order so
// that warnings come in a stable order.
func (e *engine) addNamedSecrets(secrets map[string]string) {
	names := make([]string, 0, len(secrets))
	for k := range secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		e.addSecret("secret "+k, secrets[k])
	}
}

// executor returns the shared executor for a job's configuration, creating
// it on first use.
func (e *engine) executor(cfg compiler.Executor) (executors.Executor, error) {
	key := executorKey(cfg)
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.executors[key]; ok {
		return x, nil
	}
	if err, ok := e.execErrs[key]; ok {
		return nil, err
	}
	x, err := e.opts.Registry.New(cfg.Type, executors.Params{
		Config: cfg.Config(), Name: cfg.Name, RunID: e.opts.RunID, RunDir: e.opts.RunDir, Environ: e.opts.Environ,
		Logger: e.log.Named("executor."+cfg.Type).With("run", e.opts.RunID),
	})
	if err != nil {
		e.execErrs[key] = err
		return nil, err
	}
	e.executors[key] = x
	return x, nil
}

// executorKey names the executor configuration cfg: jobs whose
// configurations have the same key share an executor. Most have no
// backend options (local ones): their key is built without encoding
// JSON for every job; the others' is their JSON, which begins with '{'.
func executorKey(cfg compiler.Executor) string {
	if cfg.OCI == nil && cfg.SSH == nil && cfg.EC2 == nil && cfg.Custom == nil {
		return "\x00" + cfg.Type + "\x00" + cfg.Name + "\x00" + strconv.FormatBool(cfg.CopyRepo)
	}
	key, _ := json.Marshal(cfg)
	return string(key)
}

func (e *engine) closeExecutors() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.executors {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.abort), e.opts.TeardownTimeout)
		if err := x.Close(ctx); err != nil {
			e.log.Error("close executor", "error", err)
		}
		cancel()
	}
	// The parents of the jobs' workspaces and temporary directories go
	// when nothing was kept in them (--keep-workspace, a step's files the
	// executor could not remove).
	for _, d := range []string{"jobs", "tmp"} {
		_ = os.Remove(filepath.Join(e.opts.RunDir, d))
	}
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
