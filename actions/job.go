package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/timing"
)

// visit runs one job; the scheduler calls it once every job it needs has
// finished.
func (e *engine) visit(_ context.Context, name string) {
	job := e.plan.Job(name)
	res := e.results[name]
	res.Started = e.now()
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("job panicked", "job", name, "panic", r, "stack", string(debug.Stack()))
			res.Status, res.Reason, res.Domain = event.StatusFailure, fmt.Sprintf("internal error: %v", r), DomainExecutor
		}
		res.Duration = timing.Duration(e.now().Sub(res.Started))
		if res.Status == event.StatusSkipped || (res.Status == event.StatusCancelled && len(res.Steps) == 0) {
			res.Duration = 0
		}
		e.emit(event.Event{Job: name, Event: event.JobEnd, Result: res.Status, Reason: res.Reason,
			Allowed: res.Allowed, Duration: res.Duration})
	}()

	if run, status, reason := e.jobStatusHolds(job); !run {
		res.Status, res.Reason = status, reason
		return
	}
	e.runJob(job, res)
	if res.Status == event.StatusFailure && job.ContinueOnError {
		res.Allowed = true
	}
}

// jobStatusHolds evaluates the status function of a job's condition over
// the results of the jobs it needs. When it does not hold it says whether
// the job is skipped or cancelled, and why.
func (e *engine) jobStatusHolds(job *compiler.Job) (bool, event.Status, string) {
	cancelled := e.cancel.Err() != nil
	if e.abort.Err() != nil {
		return false, event.StatusCancelled, "run aborted"
	}
	switch job.Condition.Status {
	case compiler.StatusExpr:
		return e.jobExprHolds(job, cancelled)
	case compiler.StatusAlways:
		return true, "", ""
	case compiler.StatusCancelled:
		return cancelled, event.StatusSkipped, "the run was not cancelled"
	case compiler.StatusFailure:
		if cancelled {
			return false, event.StatusCancelled, "run cancelled"
		}
		for _, a := range e.graph.Ancestors(job.Name) {
			if r := e.results[a]; r.Status == event.StatusFailure && !r.Allowed {
				return true, "", ""
			}
		}
		return false, event.StatusSkipped, "no job it needs failed"
	default:
		if cancelled {
			return false, event.StatusCancelled, "run cancelled"
		}
		for _, n := range job.Needs {
			if r := e.results[n]; !r.ok() {
				what := "failed"
				if r.Status != event.StatusFailure {
					what = "was " + string(r.Status)
				}
				return false, event.StatusSkipped, fmt.Sprintf("needed job %q %s", n, what)
			}
		}
		return true, "", ""
	}
}

// jobRun is the state of one running job.
type jobRun struct {
	e      *engine
	job    *compiler.Job
	res    *JobResult
	ws     executors.Workspace
	env    envMap // the job's environment before step layers
	jobEnv envMap // values steps exported through JOB_ENV
	path   []string
	// deadline is done when the job's timeout expires (never without
	// one): the one clock every wait of the job selects on.
	deadline context.Context
	// seen holds each control file's content as last parsed.
	seen    map[string][]byte
	hostCtl string
	// cleanup jobs (always(), cancelled()) are not interrupted by the
	// first Ctrl-C, only by the second.
	cleanup bool
	// timedOut records that the job's timeout struck.
	timedOut bool
	// lost is set when a step's workspace was lost and its retry lets
	// the job start again in a new one; spent counts the attempts each
	// step made in lost workspaces.
	lost  *lostWorkspace
	spent map[string]int
	// rooted records that the job's deps were built, with roots under
	// the run directory's gcroots to remove when it ends.
	rooted bool
}

func (e *engine) runJob(job *compiler.Job, res *JobResult) {
	jr := &jobRun{e: e, job: job, res: res, jobEnv: envMap{}, seen: map[string][]byte{},
		cleanup: job.Condition.Cleanup(), spent: map[string]int{}}
	defer jr.startDeadline()()
	fail := jr.fail

	env := e.jobEnv[job.Name].clone()
	clash := needsEnv(env, job.Needs, e.results)
	e.opts.Overrides.apply(env)
	jr.env = env
	if clash != "" {
		// One value would be lost, or pass for another job's result.
		fail(DomainStep, clash)
		return
	}

	// A bash condition runs on this machine, in the repository, before any
	// workspace exists: a false condition costs no container or instance.
	if cmd := job.Condition.Command; cmd != "" {
		ctx, stop := jr.bounded()
		code, err := e.hostCondition(ctx, job, cmd, env)
		stop()
		switch {
		case jr.interrupt().Err() != nil:
			res.Status, res.Reason = event.StatusCancelled, "run cancelled"
			return
		case jr.expired():
			// The condition is the job's time too: cut by its timeout, the
			// job fails, none of its steps having run.
			jr.timedOut = true
			fail(DomainStep, fmt.Sprintf("job timed out after %s while its condition ran", job.Timeout))
			return
		case err != nil:
			fail(DomainExecutor, fmt.Sprintf("condition: %v", err))
			return
		case code != 0:
			res.Status, res.Reason = event.StatusSkipped, fmt.Sprintf("condition %q exited with status %d", cmd, code)
			return
		}
	}

	e.emit(event.Event{Job: job.Name, Event: event.JobStart, Message: job.Executor.Type})
	defer func() {
		if jr.rooted {
			os.RemoveAll(filepath.Join(e.opts.RunDir, "gcroots", job.Name))
		}
	}()
	if err := e.realiseDeps(jr); err != nil {
		if jr.interrupt().Err() != nil {
			res.Status, res.Reason = event.StatusCancelled, "run cancelled"
			return
		}
		if jr.expired() {
			jr.timedOut = true
			fail(DomainStep, fmt.Sprintf("job timed out after %s while its dependencies were built", job.Timeout))
			return
		}
		fail(DomainBuild, err.Error())
		return
	}

	e.log.Debug("executor chosen", "job", job.Name, "type", job.Executor.Type, "name", job.Executor.Name,
		"copy_repo", job.Executor.CopyRepo, "store_paths", len(job.StorePaths()))
	x, err := e.executor(job.Executor)
	if err != nil {
		fail(DomainExecutor, fmt.Sprintf("executor %s: %v", job.Executor.Type, err))
		return
	}
	spec := executors.JobSpec{
		RunID: e.opts.RunID, Job: job.Name, RunDir: e.opts.RunDir, RepoDir: e.opts.RepoDir,
		CopyRepo: job.Executor.CopyRepo, Exclude: e.opts.Exclude, StorePaths: job.StorePaths(),
		ControlFiles: controlFiles,
		Log:          func(msg string) { e.emit(event.Event{Job: job.Name, Event: event.Progress, Message: msg}) },
	}
	for again := ""; ; {
		ws, err := jr.prepare(x, spec)
		if err != nil {
			if jr.interrupt().Err() != nil {
				res.Status, res.Reason = event.StatusCancelled, "run cancelled"
				return
			}
			if jr.expired() {
				// A slow pull, boot or copy is the job's time too.
				jr.timedOut = true
				fail(DomainStep, fmt.Sprintf("job timed out after %s while its %s workspace was prepared%s", job.Timeout, job.Executor.Type, again))
				return
			}
			fail(DomainExecutor, fmt.Sprintf("prepare %s workspace%s: %v", job.Executor.Type, again, err))
			return
		}
		lost := jr.inWorkspace(ws)
		if lost == nil {
			return
		}
		// A step's retry applies to a workspace lost with its host: the
		// job starts again, from its first step, in a new one.
		e.emit(event.Event{Job: job.Name, Event: event.Warning, Message: fmt.Sprintf(
			"the workspace on %s was lost during step %q: %v; preparing the job again, to run from its first step",
			res.Where, lost.step, firstLine(lost.err.Error()))})
		again = fmt.Sprintf(" again (step %q lost its workspace on %s)", lost.step, res.Where)
		res.Steps, res.Outputs, res.Where = nil, nil, ""
		jr.jobEnv, jr.path, jr.seen, jr.lost = envMap{}, nil, map[string][]byte{}, nil
	}
}

// prepare makes the job's workspace, stopped by the run's cancellation
// and by the job's deadline: the timeout bounds the whole job, a slow
// image pull or instance boot included.
func (jr *jobRun) prepare(x executors.Executor, spec executors.JobSpec) (executors.Workspace, error) {
	ctx, stop := jr.bounded()
	defer stop()
	return x.Prepare(ctx, spec)
}

// needsEnv adds to env how each job of needs ended (NEEDS_<JOB>_RESULT)
// and its outputs (NEEDS_<JOB>_<KEY>; an output named result wins over
// its job's result). Two jobs may give the same name (job "x" an output
// "y_k", job "x-y" an output "k"): it returns why, "" if none do.
func needsEnv(env envMap, needs []string, results map[string]*JobResult) string {
	type source struct{ job, what string }
	from := map[string]source{}
	clash := ""
	set := func(name string, src source, v string) {
		if other, ok := from[name]; ok && other.job != src.job && clash == "" {
			clash = fmt.Sprintf("%s would be both job %q's %s and job %q's %s: rename one of them", name, other.job, other.what, src.job, src.what)
		}
		from[name] = src
		env[name] = v
	}
	for _, need := range needs {
		r := results[need]
		set(resultEnvName(need), source{need, "result"}, r.resultWord())
		keys := slices.Sorted(maps.Keys(r.Outputs))
		for _, k := range keys {
			set(outputEnvName(need, k), source{need, fmt.Sprintf("output %q", k)}, r.Outputs[k])
		}
	}
	return clash
}

// fail records the job's failure, its reason masked.
func (jr *jobRun) fail(d Domain, reason string) {
	jr.res.Status, jr.res.Domain, jr.res.Reason = event.StatusFailure, d, jr.e.opts.Masker.Mask(reason)
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// lostWorkspace is the error of a step's Run, or of the read of its
// control files, that says the workspace is gone
// (executors.ErrWorkspaceLost), at an attempt its retry allows to follow.
type lostWorkspace struct {
	step string
	err  error
}

// inWorkspace runs the job's steps in ws and tears it down. It returns
// what lost the workspace when a step's retry lets the job start again
// elsewhere; the job's result is then left to the next workspace.
func (jr *jobRun) inWorkspace(ws executors.Workspace) *lostWorkspace {
	e, job, res, fail := jr.e, jr.job, jr.res, jr.fail
	jr.ws = ws
	res.Where = ws.Where()
	// For the events file and reports; the console shows it in the summary.
	e.emit(event.Event{Job: job.Name, Event: event.Progress, Where: res.Where})
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.abort), e.opts.TeardownTimeout)
		defer cancel()
		err := ws.Teardown(ctx, e.opts.KeepWorkspace)
		switch {
		case err != nil && (jr.lost != nil || errors.Is(err, executors.ErrWorkspaceLost) &&
			(res.Status == event.StatusCancelled || res.Domain == DomainExecutor)):
			// Best effort: the workspace went with its host, which the
			// job's executor failure (or its cancellation) already says;
			// a job that failed of its own still hears of it.
			e.log.Debug("teardown of a lost workspace", "job", job.Name, "error", err)
		case err != nil:
			e.log.Error("teardown", "job", job.Name, "error", err)
			if res.Status == event.StatusSuccess {
				fail(DomainExecutor, fmt.Sprintf("teardown: %v", err))
			}
		}
	}()
	// Created by CopyOut when a step writes a control file, unless the
	// workspace reads them in place.
	jr.hostCtl = filepath.Join(e.opts.RunDir, "control", job.Name)
	if _, inPlace := ws.(executors.TempFileReader); !inPlace {
		defer os.RemoveAll(jr.hostCtl)
	}

	if err := jr.restoreInputs(); err != nil {
		if e.abort.Err() != nil {
			// A second Ctrl-C stopped the copy: no executor failed.
			res.Status, res.Reason = event.StatusCancelled, "run cancelled"
			return nil
		}
		d := DomainExecutor
		var inTheWay inTheWayError
		if errors.Is(err, errNotProduced) || errors.As(err, &inTheWay) {
			d = DomainStep
		}
		fail(d, fmt.Sprintf("restore artifacts: %v", err))
		return nil
	}
	jr.runSteps()
	if jr.lost != nil {
		return jr.lost
	}
	if err := jr.saveOutputs(); err != nil && res.Status != event.StatusCancelled {
		if res.Status != event.StatusFailure {
			// A missing output, a link out of the workspace, a file the
			// step made unreadable (chmod 000): the workflow's to fix.
			d := DomainExecutor
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, executors.ErrOutside) || errors.Is(err, errNotFileOrDir) || errors.Is(err, fs.ErrPermission) {
				d = DomainStep
			}
			fail(d, err.Error())
		}
		e.log.Debug("save artifacts", "job", job.Name, "error", err)
	}
	return nil
}

// prepareEnvironments runs every provider, the workflow's and each job's,
// and checks every required name, before any job starts: a missing secret
// stops the run at once, with every problem listed, not after an hour of
// building. A job's declared environment here is, lowest first: the
// --pass-env names, workflow providers and env, job providers and env, runtime overrides.
func (e *engine) prepareEnvironments() error {
	var errs []error
	if err := e.realiseProviders(); err != nil {
		return fmt.Errorf("build providers: %w", err)
	}
	// Built providers are needed only until they ran.
	defer os.RemoveAll(filepath.Join(e.opts.RunDir, "gcroots", "providers"))
	var err error
	e.workEnv, err = e.resolveProviders("workflow", e.plan.EnvFrom)
	e.addNamedSecrets(e.workEnv.secrets)
	if err != nil {
		// Go on with the jobs' providers, so that every problem is listed;
		// but not with required names, which this provider may have set.
		errs = append(errs, err)
		e.workEnv = &providerResult{values: envMap{}}
	}
	checkNames := err == nil
	host := fromList(e.opts.Environ)
	final := map[string]string{}
	defer e.addFinalSecrets(final)
	e.jobEnv = make(map[string]envMap, len(e.plan.Jobs))
	for _, job := range e.plan.Jobs {
		jobProv, err := e.resolveProviders("job "+job.Name, job.EnvFrom)
		e.addNamedSecrets(jobProv.secrets)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// What else a step inherits (nixflow's environment for local
		// steps, an image's or a remote login's) is its executor's
		// business: the declared environment starts from --pass-env.
		env := envMap{}
		for _, name := range e.opts.PassEnv {
			if v, ok := host[name]; ok {
				env[name] = v
			}
		}
		env.set(e.workEnv.values)
		env.set(e.plan.Env)
		env.set(jobProv.values)
		env.set(job.Env)
		e.jobEnv[job.Name] = env
		check := env.clone()
		e.opts.Overrides.apply(check)
		finalSecrets(final, check, e.workEnv.secretNames, jobProv.secretNames)
		e.noteSecretNames(e.workEnv.secretNames, jobProv.secretNames)
		required := append(append([]string(nil), e.workEnv.required...), jobProv.required...)
		if err := checkRequired(check, required); err != nil && checkNames {
			errs = append(errs, fmt.Errorf("job %s: %w", job.Name, err))
		}
	}
	e.requiredSecretsSeen()
	return errors.Join(errs...)
}

// requiredSecretsSeen masks the values, in nixflow's environment and in
// the overrides, of the names every secret required provider of the plan
// lists, whether or not that provider ran, or its job was selected: a
// provider that failed may repeat them in its message (a command provider
// runs with nixflow's environment; a job's error is shown with the
// run's), and a local step inherits nixflow's environment. A value a step
// exports under such a name is a secret too. (Values too short to mask
// are warned about where they are a job's final value, as the compiled
// script does.)
func (e *engine) requiredSecretsSeen() {
	names := e.plan.RequiredSecretNames()
	over := envMap{}
	e.opts.Overrides.apply(over)
	for _, env := range []envMap{fromList(e.opts.Environ), over} {
		for _, name := range names {
			if v := env[name]; len(v) >= minSecretLen && !e.opts.Masker.has(v) {
				e.opts.Masker.Add(v)
			}
		}
	}
	e.noteSecretNames(names)
}

func (e *engine) hostCondition(ctx context.Context, job *compiler.Job, cmd string, env envMap) (int, error) {
	var out bytes.Buffer
	// It runs here, so it inherits nixflow's environment below the job's.
	environ := append(append([]string(nil), e.opts.Environ...), env.list()...)
	code, stderr, err := e.runHost(ctx, cmd, environ, e.opts.RepoDir, &out)
	// A value it announces with ::add-mask::, on either stream, is a
	// secret, as a step's condition's: all of them are learnt before its
	// stderr is shown (the order of the two streams is lost here).
	for _, text := range []string{out.String(), stderr} {
		for line := range strings.Lines(text) {
			if v, ok := announcement(line); ok && v != "" {
				e.addSecret("the value announced with ::add-mask::", v)
			}
		}
	}
	if err != nil {
		return code, err
	}
	for line := range strings.Lines(strings.TrimSpace(stderr)) {
		if _, ok := announcement(line); ok {
			line = addMask + "***"
		}
		if line = strings.TrimRight(line, "\n"); line != "" {
			e.emit(event.Event{Job: job.Name, Event: event.Warning, Message: "condition: " + line})
		}
	}
	return code, nil
}

// realiseDeps builds the deps of the job's steps whose store paths do not
// exist yet, alongside the other running jobs.
func (e *engine) realiseDeps(jr *jobRun) error {
	var drvs, missing []string
	seen := map[string]bool{}
	for _, s := range jr.job.Steps {
		for _, d := range s.Deps {
			if seen[d.Path] {
				continue
			}
			seen[d.Path] = true
			if _, err := os.Stat(d.Path); err == nil {
				continue
			}
			if d.Drv == "" {
				missing = append(missing, d.Path)
				continue
			}
			drvs = append(drvs, d.Drv)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("dependency %s does not exist and has no derivation to build it", strings.Join(missing, ", "))
	}
	if len(drvs) == 0 {
		return nil
	}
	if e.opts.Realise == nil {
		return fmt.Errorf("dependencies not built and no way to build them here: %s", strings.Join(drvs, ", "))
	}
	e.emit(event.Event{Job: jr.job.Name, Event: event.Warning, Message: "building " + executors.Count(len(drvs), "dependency", "dependencies")})
	log := func(line string) {
		e.emit(event.Event{Job: jr.job.Name, Step: "(build)", Event: event.Output, Stream: "stderr", Message: line})
	}
	// The outputs stay rooted while the job runs: a garbage collection
	// meanwhile cannot take them from under its steps.
	root := filepath.Join(e.opts.RunDir, "gcroots", jr.job.Name, "dep")
	jr.rooted = true
	ctx, stop := jr.bounded()
	defer stop()
	return e.opts.Realise(ctx, drvs, root, log)
}
