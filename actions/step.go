package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/timing"
)

// stepShell is how every step runs, on every executor: bash without
// profiles, stopping at the first failing command and failing pipelines.
var stepShell = []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"}

// conditionShell runs step conditions: a plain bash command.
var conditionShell = []string{"bash", "--noprofile", "--norc", "-c"}

// The control files of a job, in its workspace's temp dir.
const (
	fileEnv    = "env"
	filePath   = "path"
	fileOutput = "output"
)

// controlFiles are the control files' names, for executors.JobSpec.
var controlFiles = []string{fileEnv, filePath, fileOutput}

func (jr *jobRun) runSteps() {
	failed := false
	var failReason string
	var failDomain Domain
	cancelled := false
	for _, step := range jr.job.Steps {
		sr := &StepResult{Step: step.Name, Attempts: 0}
		jr.res.Steps = append(jr.res.Steps, sr)
		if !jr.stepStatusHolds(step, failed) {
			sr.Status, sr.Reason = event.StatusSkipped, jr.stepSkipReason(step, failed)
			if step.Condition.Status == compiler.StatusSuccess && jr.expired() {
				jr.timedOut = true
			}
			// always() (or an expression that holds in a cancelled run)
			// was skipped by a second Ctrl-C: that is a skip, not a cancel.
			keep := step.Condition.Status == compiler.StatusAlways ||
				(step.Condition.Status == compiler.StatusExpr && step.Condition.Cleanup())
			if jr.interrupt().Err() != nil && !keep {
				sr.Status, sr.Reason = event.StatusCancelled, "run cancelled"
			}
			jr.e.emit(event.Event{Job: jr.job.Name, Step: step.Name, Event: event.StepEnd, Result: sr.Status, Reason: sr.Reason})
			continue
		}
		jr.runStep(step, sr)
		if jr.lost != nil {
			return
		}
		switch {
		case sr.Status == event.StatusCancelled:
			cancelled = true
		case sr.Status == event.StatusFailure && step.ContinueOnError:
			sr.Allowed = true
			if jr.timedOut && !failed {
				// Allowed to fail, not to outlast the job: the job's
				// timeout fails the job, and its failure() steps run.
				failed = true
				failReason, failDomain = jobTimedOut(jr.job.Timeout), DomainStep
			}
		case sr.Status == event.StatusFailure && !failed:
			failed = true
			failReason = fmt.Sprintf("step %q %s", step.Name, sr.Reason)
			if rest, ok := strings.CutPrefix(sr.Reason, jobTimedOut(jr.job.Timeout)); ok {
				// The job's fault more than the step's: said first.
				failReason = fmt.Sprintf("%s in step %q%s", jobTimedOut(jr.job.Timeout), step.Name, rest)
			}
			failDomain = DomainStep
			if sr.infra {
				failDomain = DomainExecutor
			}
		}
	}
	switch {
	case failed:
		jr.res.Status, jr.res.Reason, jr.res.Domain = event.StatusFailure, failReason, failDomain
	case jr.timedOut:
		// A timeout is a failure, also when the step it stopped was allowed
		// to fail, or when it struck between steps.
		jr.res.Status, jr.res.Domain = event.StatusFailure, DomainStep
		jr.res.Reason = jobTimedOut(jr.job.Timeout)
	case cancelled || jr.interrupt().Err() != nil:
		jr.res.Status, jr.res.Reason = event.StatusCancelled, "run cancelled"
	default:
		jr.res.Status = event.StatusSuccess
	}
}

// stepStatusHolds evaluates a step's status function over the earlier
// steps of its job.
func (jr *jobRun) stepStatusHolds(step *compiler.Step, failed bool) bool {
	e := jr.e
	if e.abort.Err() != nil {
		return false
	}
	cancelled := e.cancel.Err() != nil
	interrupted := jr.interrupt().Err() != nil
	switch step.Condition.Status {
	case compiler.StatusExpr:
		return step.Condition.Holds(compiler.StatusValues{
			Success:   !failed && !interrupted && !jr.expired(),
			Failure:   failed && !interrupted,
			Cancelled: cancelled,
		})
	case compiler.StatusAlways:
		return true
	case compiler.StatusCancelled:
		return cancelled
	case compiler.StatusFailure:
		return failed && !interrupted
	default:
		return !failed && !interrupted && !jr.expired()
	}
}

// interrupt is the context whose end stops the job's ordinary steps: the
// first Ctrl-C for ordinary jobs, the second for cleanup jobs.
func (jr *jobRun) interrupt() context.Context {
	if jr.cleanup {
		return jr.e.abort
	}
	return jr.e.cancel
}

// stepInterrupt is the context whose end stops step, its attempts and the
// waits between them: the job's (interrupt), or the second Ctrl-C for a
// cleanup step.
func (jr *jobRun) stepInterrupt(step *compiler.Step) context.Context {
	if cleansUpAfterCancel(step) {
		return jr.e.abort
	}
	return jr.interrupt()
}

// stepSkipReason says why a step's status function does not hold.
func (jr *jobRun) stepSkipReason(step *compiler.Step, failed bool) string {
	switch {
	case jr.e.abort.Err() != nil:
		return "run aborted"
	case step.Condition.Status == compiler.StatusCancelled:
		return "the run was not cancelled"
	case step.Condition.Status == compiler.StatusFailure:
		return "no earlier step failed"
	case jr.expired():
		return "the job timed out"
	case failed:
		return "an earlier step failed"
	}
	return "condition " + step.Condition.String() + " is false"
}

// stepContext bounds a step attempt: by the run's cancellation (for
// always() and cancelled() steps, only by the abort: they clean up after a
// Ctrl-C), by the job's deadline unless it has passed already for a step
// that runs after failures (always(), failure(), cancelled() steps clean up
// after a timeout), and by the step's own timeout. why tells, once the
// attempt is over, whether a timeout stopped it, and whether the job's.
func (jr *jobRun) stepContext(step *compiler.Step) (context.Context, context.CancelFunc, func() (string, bool)) {
	base := jr.stepInterrupt(step)
	afterTimeout := step.Condition.Status != compiler.StatusSuccess && jr.expired()
	var job context.Context
	if !afterTimeout {
		job = jr.deadline
	}
	return attemptContext(base, job, time.Duration(step.Timeout), jr.job.Timeout.String(), step.Timeout.String())
}

// cleansUpAfterCancel reports whether a step runs, and goes on running,
// after the first Ctrl-C: one whose condition can hold in a cancelled run
// (always(), cancelled(), failure() || cancelled(), !success(), ...).
func cleansUpAfterCancel(step *compiler.Step) bool {
	return step.Condition.Cleanup()
}

// stepEnv layers the step's own env, JOB_ENV values and the runtime
// overrides over the job's declared environment, and adds nixflow's
// variables. The executor lays the result over its own base environment.
func (jr *jobRun) stepEnv(step *compiler.Step) envMap {
	env := jr.env.clone()
	env.set(step.Env)
	env.set(jr.jobEnv)
	jr.e.opts.Overrides.apply(env)
	tmp := jr.ws.TempDir()
	env["JOB_ENV"] = path.Join(tmp, fileEnv)
	env["JOB_PATH"] = path.Join(tmp, filePath)
	env["JOB_OUTPUT"] = path.Join(tmp, fileOutput)
	env["NIXFLOW_RUN_ID"] = jr.e.opts.RunID
	env["NIXFLOW_JOB"] = jr.job.Name
	env["NIXFLOW_STEP"] = step.Name
	env["NIXFLOW_WORKSPACE"] = jr.ws.Dir()
	jr.addCompatEnv(env)
	return env
}

// stepPath lists the directories that go in front of the step's PATH: its
// deps' bin directories, then the JOB_PATH entries, the latest first.
func (jr *jobRun) stepPath(step *compiler.Step) []string {
	var front []string
	for _, d := range step.Deps {
		front = append(front, path.Join(d.Path, "bin"))
	}
	for i := len(jr.path) - 1; i >= 0; i-- {
		front = append(front, jr.path[i])
	}
	return front
}

func (jr *jobRun) runStep(step *compiler.Step, sr *StepResult) {
	e := jr.e
	name := jr.job.Name
	start := e.now()
	defer func() { sr.Duration = timing.Duration(e.now().Sub(start)) }()
	env := jr.stepEnv(step).list()
	front := jr.stepPath(step)
	out := jr.outputs(step.Name)

	// ends a step that did not get to run its attempts to the end.
	end := func(status event.Status, reason string) {
		sr.Status, sr.Reason = status, reason
		ev := event.Event{Job: name, Step: step.Name, Event: event.StepEnd, Result: status, Reason: reason, Attempt: sr.Attempts}
		if status == event.StatusFailure && step.ContinueOnError {
			ev.Allowed = true
		}
		e.emit(ev)
	}

	if cmd := step.Condition.Command; cmd != "" {
		ctx, cancel, why := jr.stepContext(step)
		r, err := jr.ws.Run(ctx, jr.command(append(conditionShell[:len(conditionShell):len(conditionShell)], cmd), env, front, step.Workdir, out))
		reason, jobTimeout := why()
		cancel()
		out.close()
		switch {
		case err != nil && r.Stopped && reason == "" && errors.Is(err, executors.ErrWorkspaceLost):
			// Cancelled as its host stopped answering: as for a step.
			end(event.StatusCancelled, fmt.Sprintf("run cancelled (%v)", err))
			return
		case err != nil:
			// (A working directory that is not there is the step's fault.)
			sr.infra = !errors.Is(err, executors.ErrNoWorkdir)
			end(event.StatusFailure, fmt.Sprintf("condition could not run: %v", err))
			return
		case r.Stopped && reason != "":
			jr.timedOut = jr.timedOut || jobTimeout
			end(event.StatusFailure, "condition "+reason)
			return
		case r.Stopped:
			end(event.StatusCancelled, "run cancelled")
			return
		case r.ExitCode != 0:
			end(event.StatusSkipped, fmt.Sprintf("condition %q exited with status %d", cmd, r.ExitCode))
			return
		}
		out = jr.outputs(step.Name)
	}

	argv := append(stepShell[:len(stepShell):len(stepShell)], controlPrologue+step.Bash)
	max := step.Retry.MaxAttempts
	for attempt := jr.spent[step.Name] + 1; ; attempt++ {
		sr.Attempts = attempt
		e.emit(event.Event{Job: name, Step: step.Name, Event: event.StepStart, Attempt: attempt, Attempts: max})
		ctx, cancel, why := jr.stepContext(step)
		t0 := e.now()
		r, err := jr.ws.Run(ctx, jr.command(argv, env, front, step.Workdir, out))
		reason, jobTimeout := why()
		jr.timedOut = jr.timedOut || (r.Stopped && jobTimeout)
		cancel()
		out.close()
		sr.ExitCode = r.ExitCode
		// Whatever the step wrote to the control files counts, also when
		// it failed: a later always() step may need it.
		cerr := jr.readControl()
		if cerr != nil && r.Stopped {
			// Why the step was stopped is its reason; this is a detail.
			e.log.Debug("control files of a stopped step", "job", name, "step", step.Name, "error", cerr)
		}
		ev := event.Event{Job: name, Step: step.Name, Event: event.StepEnd, Attempt: attempt, Attempts: max,
			Duration: timing.Duration(e.now().Sub(t0))}
		code := r.ExitCode
		ev.ExitCode = &code
		switch {
		case err != nil && errors.Is(err, executors.ErrNoWorkdir):
			// The workspace is the workflow's: the step's failure.
			sr.Status, sr.Reason = event.StatusFailure, fmt.Sprintf("could not run: %v", err)
		case err != nil && r.Stopped && reason == "" && errors.Is(err, executors.ErrWorkspaceLost):
			// Cancelled, and its host stopped answering as it was
			// stopped (a partition): the run was cancelled all the same.
			sr.Status, sr.Reason = event.StatusCancelled, fmt.Sprintf("run cancelled (%v)", err)
		case err != nil:
			sr.Status, sr.Reason, sr.infra = event.StatusFailure, fmt.Sprintf("could not run: %v", err), true
		case cerr != nil && errors.Is(cerr, executors.ErrWorkspaceLost):
			// The host lost after the step: the executor's failure.
			sr.Status, sr.Reason, sr.infra = event.StatusFailure, cerr.Error(), true
		case cerr != nil && e.abort.Err() != nil:
			// Cut short by a second Ctrl-C.
			sr.Status, sr.Reason = event.StatusCancelled, "run cancelled"
		case cerr != nil && !r.Stopped:
			sr.Status, sr.Reason = event.StatusFailure, cerr.Error()
		case r.Stopped && reason == "":
			sr.Status, sr.Reason = event.StatusCancelled, "run cancelled"
		case r.Stopped:
			sr.Status, sr.Reason = event.StatusFailure, reason
		case r.ExitCode != 0:
			sr.Status, sr.Reason = event.StatusFailure, "failed with exit status "+formatExit(r.ExitCode)
		default:
			sr.Status, sr.Reason = event.StatusSuccess, ""
		}
		lost := err
		if lost == nil {
			lost = cerr
		}
		// (A job moves to a new workspace only while the job itself is
		// not stopped: it is prepared again.)
		if sr.Status == event.StatusFailure && errors.Is(lost, executors.ErrWorkspaceLost) &&
			attempt < max && jr.interrupt().Err() == nil && !jr.expired() {
			// The step did not fail, its host did: the job starts again
			// in a new workspace, this step's next attempt included.
			jr.lost, jr.spent[step.Name] = &lostWorkspace{step: step.Name, err: lost}, attempt
			e.emit(event.Event{Job: name, Step: step.Name, Event: event.StepRetry, Attempt: attempt + 1, Attempts: max, ExitCode: ev.ExitCode,
				Message: fmt.Sprintf("attempt %d/%d failed: %s; retrying in a new workspace", attempt, max, firstLine(sr.Reason))})
			return
		}
		stopped := jr.stepInterrupt(step).Err() != nil
		if sr.Status == event.StatusFailure && err == nil && cerr == nil && attempt < max && stopped {
			// Ctrl-C came as the attempt ended: the wait for the next one
			// would have been cut short, so the step is cancelled, as it
			// is when Ctrl-C comes during that wait.
			sr.Status, sr.Reason = event.StatusCancelled, "run cancelled"
		}
		final := sr.Status != event.StatusFailure || err != nil || cerr != nil || attempt >= max ||
			stopped || jr.expired()
		jr.noTimeForRetry(step, sr, final && err == nil && cerr == nil && attempt < max && !stopped)
		if sr.Status == event.StatusFailure && final && attempt > 1 {
			sr.Reason += fmt.Sprintf(" (after %d attempts)", attempt)
		}
		ev.Result, ev.Reason = sr.Status, sr.Reason
		if sr.Status == event.StatusFailure && step.ContinueOnError {
			ev.Allowed = true
		}
		if sr.Status == event.StatusFailure {
			sr.Tail = out.tail.get()
		}
		if final || sr.Status != event.StatusFailure {
			e.emit(ev)
			return
		}
		delay := step.Retry.Delay(attempt)
		e.emit(event.Event{Job: name, Step: step.Name, Event: event.StepRetry, Attempt: attempt + 1, Attempts: max, ExitCode: ev.ExitCode,
			Message: fmt.Sprintf("attempt %d/%d failed: %s; retrying in %s", attempt, max, sr.Reason, jr.shownDelay(delay))})
		switch jr.sleep(step, delay) {
		case waitCancelled:
			end(event.StatusCancelled, "run cancelled")
			return
		case waitExpired:
			// The job's time ran out during the wait: no phantom attempt.
			jr.timedOut = true
			end(event.StatusFailure, fmt.Sprintf("job timed out after %s (after %s)", jr.job.Timeout, executors.Count(attempt, "attempt", "attempts")))
			return
		}
		out = jr.outputs(step.Name)
	}
}

func (jr *jobRun) command(argv, env, front []string, dir string, out *stepOutput) executors.Command {
	e := jr.e
	return executors.Command{
		Argv: argv, Env: env, PathPrepend: front, Dir: dir, Stdout: out.stdout, Stderr: out.stderr,
		Stop: func() executors.Signals {
			return executors.Signals{
				FirstSignalInterrupt: e.cancel.Err() != nil,
				InterruptGrace:       e.opts.InterruptGrace,
				TerminateGrace:       e.opts.TerminateGrace,
				Hurry:                e.abort.Done(),
			}
		},
	}
}

// stepOutput is the pair of line writers of one step attempt.
type stepOutput struct {
	stdout, stderr *lineWriter
	tail           *tail
}

func (o *stepOutput) close() {
	o.stdout.Close()
	o.stderr.Close()
}

func (jr *jobRun) outputs(step string) *stepOutput {
	e := jr.e
	t := &tail{}
	announce := func(v string) { e.addSecret("the value announced with ::add-mask::", v) }
	mk := func(stream string) *lineWriter {
		return &lineWriter{
			sink: e.opts.Sink, mask: e.opts.Masker, announce: announce, tail: t, now: e.now,
			tmpl: event.Event{Run: e.opts.RunID, Job: jr.job.Name, Step: step, Event: event.Output, Stream: stream},
		}
	}
	return &stepOutput{stdout: mk("stdout"), stderr: mk("stderr"), tail: t}
}

// readControl reads what the last step appended to JOB_ENV, JOB_PATH and
// JOB_OUTPUT: in place where the workspace can read them so, else with
// one copy of the job's temp dir. Only what was appended is parsed; a
// file that no longer starts with what was read before was rewritten
// (`>` instead of `>>`) and is parsed whole.
func (jr *jobRun) readControl() error {
	if r, ok := jr.ws.(executors.TempFileReader); ok {
		return jr.parseControl(r.ReadTempFile)
	}
	// A second Ctrl-C ends the copy: the run is ending, and a host that
	// stopped answering must not hold it.
	ctx, cancel := context.WithTimeout(jr.e.abort, time.Minute)
	defer cancel()
	// The copy may hold secrets a step exported: it never stays in the run
	// directory.
	defer os.RemoveAll(jr.hostCtl)
	err := jr.ws.CopyOut(ctx, jr.ws.TempDir(), jr.hostCtl)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the control files (JOB_ENV, JOB_PATH, JOB_OUTPUT): %w", err)
	}
	// The copy keeps the step's symbolic links as links: one is the
	// remote host's (the container's) and must not be followed here,
	// where an absolute one would read this machine's file. A link that
	// stays in the directory is followed.
	root, err := os.OpenRoot(jr.hostCtl)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the control files (JOB_ENV, JOB_PATH, JOB_OUTPUT): %w", err)
	}
	defer root.Close()
	return jr.parseControl(func(f string) ([]byte, error) {
		data, err := root.ReadFile(f)
		if err != nil && !errors.Is(err, fs.ErrNotExist) && strings.Contains(err.Error(), "path escapes from parent") {
			return nil, fmt.Errorf("%q in the temporary directory is a symbolic link that %w", f, executors.ErrOutside)
		}
		return data, err
	})
}

// parseControl parses what was appended to the control files, read with
// read.
func (jr *jobRun) parseControl(read func(file string) ([]byte, error)) error {
	// Every file is read, whatever another holds: what the step wrote is
	// its own, and a later step is not blamed for it.
	var errs []error
	for _, f := range []string{fileEnv, filePath, fileOutput} {
		data, err := read(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", strings.ToUpper("job_"+f), err))
			continue
		}
		seen := jr.seen[f]
		if !bytes.HasPrefix(data, seen) {
			seen = nil
		}
		jr.seen[f] = data
		// Lines are numbered from the file's start.
		if err := jr.applyControl(f, data[len(seen):], bytes.Count(seen, []byte("\n"))); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrors(errs)
}

// applyControl applies what was appended to a control file, whose first
// lines (before data) were read before.
func (jr *jobRun) applyControl(file string, data []byte, linesBefore int) error {
	if len(data) == 0 {
		return nil
	}
	if n := nulLine(data); n > 0 {
		return fmt.Errorf("%s: line %d: %s", strings.ToUpper("job_"+file), linesBefore+n, holdsNUL)
	}
	if file == filePath {
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				jr.path = append(jr.path, line)
			}
		}
		return nil
	}
	keys, values, err := parseEnvFile(data, linesBefore)
	if err != nil {
		return fmt.Errorf("%s: %w", strings.ToUpper("job_"+file), err)
	}
	for _, k := range keys {
		if file == fileEnv {
			jr.jobEnv[k] = values[k]
			jr.e.maskExported(k, values[k])
			continue
		}
		if jr.res.Outputs == nil {
			jr.res.Outputs = map[string]string{}
		}
		// Keys that differ only where the variable's name cannot (case,
		// punctuation) would reach dependent jobs as one variable, with
		// either value.
		name := outputEnvName(jr.job.Name, k)
		for other := range jr.res.Outputs {
			if other != k && outputEnvName(jr.job.Name, other) == name {
				return fmt.Errorf("JOB_OUTPUT: outputs %q and %q would both be %s in dependent jobs: rename one", other, k, name)
			}
		}
		jr.res.Outputs[k] = values[k]
	}
	return nil
}

// formatExit formats an exit code for messages.
func formatExit(code int) string {
	if code > 128 && code < 160 {
		return strconv.Itoa(code) + " (signal " + strconv.Itoa(code-128) + ")"
	}
	return strconv.Itoa(code)
}
