package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/local"
	"github.com/nixflow/nixflow/nixeval"
	"github.com/nixflow/nixflow/output"
)

type runFlags struct {
	wf             workflowFlags
	maxParallel    int
	schedule       string
	env            []string
	envFiles       []string
	passEnv        []string
	logFormat      string
	events         string
	keepWorkspace  bool
	interruptGrace time.Duration
	terminateGrace time.Duration
	repo           string
	artifactsDir   string
	groups         string
	report         reportFlags
	junit          string
}

func (a *app) runCommand() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [WORKFLOW]",
		Short: "Run a workflow",
		Long: `Run a workflow: jobs start as soon as the jobs they need have finished.

Exit status: 0 all jobs succeeded (allowed failures included), 1 a job failed,
2 bad input or usage, 3 infrastructure failure, 130 interrupted.`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.run(args, &f)
		},
	}
	f.wf.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&f.maxParallel, "max-parallel", runtime.NumCPU(), "how many jobs run at once (0: no limit)")
	fl.StringVar(&f.schedule, "schedule", "ready", "ready: a job starts when its needs are done; levels: level by level")
	fl.StringArrayVar(&f.env, "env", nil, "set a variable for every step, over the workflow's values: KEY=VALUE (repeatable)")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "read variables from a dotenv file, over the workflow's values (repeatable)")
	fl.StringArrayVar(&f.passEnv, "pass-env", nil, "pass this variable of nixflow's environment to remote executors too (repeatable)")
	fl.StringVar(&f.logFormat, "log-format", "", "output format: structured, simple, json (default: the workflow's, else structured)")
	fl.StringVar(&f.events, "events", "", "write job and step events to this file as JSON lines")
	fl.BoolVar(&f.keepWorkspace, "keep-workspace", false, "keep job workspaces in the run directory after the run")
	fl.DurationVar(&f.interruptGrace, "interrupt-grace", 7500*time.Millisecond, "on cancellation, how long steps get after SIGINT before SIGTERM")
	fl.DurationVar(&f.terminateGrace, "terminate-grace", 2500*time.Millisecond, "how long steps get after SIGTERM before SIGKILL")
	fl.StringVar(&f.groups, "groups", "auto", "replay each job's log in collapsible sections at the end: auto (detect GitHub Actions, GitLab CI, Buildkite), github, gitlab, buildkite, none")
	fl.StringVar(&f.artifactsDir, "artifacts-dir", "", "at the end, copy every artifact of the run to DIR/<name>")
	f.report.register(fl)
	fl.StringVar(&f.junit, "junit", "", "at the end, write a JUnit XML report to FILE (one testcase per job)")
	fl.StringVar(&f.repo, "repo", "", "the project jobs start from (default: the git work tree around the workflow, else the workflow's directory)")
	return cmd
}

// runGCPercent is the garbage collector's target while jobs run, unless
// GOGC says otherwise. A run's live heap is small (about 3 MB with 1,000
// jobs) and every job allocates and drops its bookkeeping: at Go's
// default of 100, a run of 1,000 no-op jobs collected 19 times; at 400,
// 6 times, with a heap of at most 18 MB (resident 39 MB against 30), and
// used about 4% less CPU time (docs/performance.md). The heap may grow
// to five times what is live.
const runGCPercent = 400

func (a *app) run(args []string, f *runFlags) error {
	// A stop signal while Nix evaluates the workflow ends nixflow as
	// interrupted (see evaluate); once the workflow is loaded, the run's
	// own handling takes over.
	plan, err := a.loadPlan(args, &f.wf)
	if err != nil {
		return err
	}
	cancel, abort, stop := a.interrupts()
	defer stop()
	opts, err := a.runOptions(plan, f)
	if err != nil {
		return err
	}
	host := local.NewHost(a.log)
	defer host.Close()
	opts.RunHost = host.Run

	format := output.Format(f.logFormat)
	if format == "" {
		format = output.Format(plan.LogFormat)
	}
	if format == "" {
		format = output.FormatStructured
	}
	switch format {
	case output.FormatStructured, output.FormatSimple, output.FormatJSON:
	default:
		return usageError(fmt.Errorf("unknown --log-format %q (known: structured, simple, json)", format))
	}
	g := output.Groups(f.groups)
	switch g {
	case "auto":
		g = output.DetectGroups(a.getenv)
	case output.GroupsNone, output.GroupsGitHub, output.GroupsGitLab, output.GroupsBuildkite:
	default:
		return usageError(fmt.Errorf("unknown --groups %q (known: auto, github, gitlab, buildkite, none)", f.groups))
	}
	if format == output.FormatJSON {
		g = output.GroupsNone // stdout stays JSON lines
	}

	// (The events file is opened only once the run can start.)
	for _, o := range [][2]string{{"--junit", f.junit}, {"--report", f.report.html}, {"--trace", f.report.trace}, {"--events", f.events}} {
		if err := checkOutputFile(o[0], o[1]); err != nil {
			return usageError(err)
		}
	}
	// Last of the checks: it makes the directory.
	madeArtifacts, err := checkArtifactsDir(f.artifactsDir, plan)
	if err != nil {
		return usageError(err)
	}

	sinks, stopLive := a.consoleSinks(a.stdout, format, plan)
	defer stopLive()
	// Nothing that can fail on bad input comes after this point but the
	// events file (a run directory exists only for a run that starts).
	if err := os.MkdirAll(opts.RunDir, 0o700); err != nil {
		return infraError(fmt.Errorf("create the run directory: %w", err))
	}
	unlock, err := lockRun(opts.RunDir)
	if err != nil {
		return infraError(err)
	}
	defer unlock()
	if f.events != "" {
		// Opened (and emptied) only once the run can start: a run refused
		// leaves an earlier events file as it was.
		ev, err := output.NewEventsFile(f.events)
		if err != nil {
			unlock()
			os.RemoveAll(opts.RunDir)
			if madeArtifacts != "" {
				os.RemoveAll(madeArtifacts)
			}
			return usageError(fmt.Errorf("--events: %w", err))
		}
		defer ev.Close()
		ev.OnError = a.sinkWarning("writing events to " + f.events)
		sinks = append(sinks, ev)
	}
	logs, err := output.NewJobLogs(filepath.Join(opts.RunDir, "logs"))
	if err != nil {
		os.RemoveAll(opts.RunDir)
		return infraError(fmt.Errorf("create the log directory: %w", err))
	}
	defer func() {
		// A log that could not be written is worth knowing, not worth
		// failing a run that passed.
		if err := logs.Close(); err != nil {
			fmt.Fprintf(a.stderr, "warning: job logs incomplete: %v\n", err)
		}
	}()
	logs.OnError = func(job, file string, err error) { a.sinkWarning("job " + job + ": writing its log " + file)(err) }
	sinks = append(sinks, logs)
	opts.Sink = sinks
	if err := writeProject(opts.RunDir, opts.RepoDir); err != nil {
		os.RemoveAll(opts.RunDir)
		return infraError(err)
	}
	if err := writePlanFile(filepath.Join(opts.RunDir, "plan.json"), plan); err != nil {
		os.RemoveAll(opts.RunDir)
		return infraError(err)
	}
	if err := writeUnselected(opts.RunDir, f.wf.unselected); err != nil {
		os.RemoveAll(opts.RunDir)
		return infraError(err)
	}

	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(runGCPercent))
	}
	raiseThreadLimit(opts.MaxParallel, len(plan.Jobs))
	res, err := actions.Run(cancel, abort, plan, opts)
	stopLive()
	if err != nil && res == nil {
		return infraError(err)
	}
	if err != nil {
		// The run happened but could not be recorded (a full disk): its
		// summary still tells how it went.
		defer fmt.Fprintf(a.stderr, "warning: the run's result was not recorded: %v\n", err)
	}
	summaryOut := a.stdout
	if format == output.FormatJSON {
		summaryOut = a.stderr
	}
	output.WriteGroups(a.stdout, g, opts.RunDir, jobOutcomes(res))
	writeSummary(summaryOut, res, opts.Masker, a.colorful(summaryOut) && format != output.FormatSimple)
	writeInstances(summaryOut, opts.RunDir)
	if dir := filepath.Join(opts.RunDir, "jobs"); f.keepWorkspace && !emptyDir(dir) {
		// Workspaces on other machines are named by their jobs' lines.
		fmt.Fprintf(summaryOut, "workspaces: kept in %s\n", dir)
	}
	// What the run leaves (reports, artifacts) is all written that can
	// be: one that fails stops none of the others.
	var errs []error
	if err := a.writeReports(f, res, opts.Masker); err != nil {
		errs = append(errs, err)
	}
	if f.artifactsDir != "" {
		n, err := exportArtifacts(opts.RunDir, f.artifactsDir)
		fmt.Fprintf(summaryOut, "artifacts: %s exported to %s\n", executors.Count(n, "artifact", "artifacts"), f.artifactsDir)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := a.writeRunReports(opts.RunDir, f.report, opts.Masker, summaryOut); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return infraError(errors.Join(errs...))
	}
	code := exitCode(res)
	if code != ExitOK {
		return &exitError{code: code, quiet: true}
	}
	return nil
}

func (a *app) runOptions(plan *compiler.Plan, f *runFlags) (actions.Options, error) {
	var opts actions.Options
	switch f.schedule {
	case "ready":
	case "levels":
		opts.Levels = true
	default:
		return opts, usageError(fmt.Errorf("unknown --schedule %q (known: ready, levels)", f.schedule))
	}
	for _, g := range []struct {
		flag string
		d    time.Duration
	}{{"--interrupt-grace", f.interruptGrace}, {"--terminate-grace", f.terminateGrace}} {
		if g.d < 0 {
			return opts, usageError(fmt.Errorf("%s must be 0 or more, got %v", g.flag, g.d))
		}
	}
	for _, k := range f.passEnv {
		if !envName.MatchString(k) {
			return opts, usageError(fmt.Errorf("--pass-env %q is not a variable name (letters, digits and '_', not starting with a digit)", k))
		}
	}
	if f.maxParallel < 0 {
		return opts, usageError(fmt.Errorf("--max-parallel must be 0 (no limit) or more, got %d", f.maxParallel))
	}
	flags := map[string]string{}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return opts, usageError(fmt.Errorf("--env %q: expected KEY=VALUE", kv))
		}
		if !envName.MatchString(k) {
			return opts, usageError(fmt.Errorf("--env %q: %q is not a variable name (letters, digits and '_', not starting with a digit)", kv, k))
		}
		flags[k] = v
	}
	files := map[string]string{}
	for _, path := range f.envFiles {
		vals, err := actions.ReadEnvFile(path)
		if err != nil {
			return opts, usageError(fmt.Errorf("--env-file %s: %w", path, err))
		}
		for k, v := range vals {
			files[k] = v
		}
	}
	repo := f.repo
	if repo == "" {
		repo = workTree(f.wf.sourceDir())
	}
	repo, err := filepath.Abs(repo)
	if err != nil {
		return opts, usageError(err)
	}
	if fi, err := os.Stat(repo); err != nil || !fi.IsDir() {
		return opts, usageError(fmt.Errorf("--repo %s: not a directory", repo))
	}
	runs, err := a.runsDir()
	if err != nil {
		return opts, err
	}
	state, err := a.stateDir()
	if err != nil {
		return opts, err
	}
	cache, err := a.cacheDir()
	if err != nil {
		return opts, err
	}
	// Counted as the copy takes it: without nixflow's state and cache.
	if err := checkCopyable(repo, plan, a.getenv("HOME"), runs, state, cache); err != nil {
		return opts, err
	}
	if a.log.IsDebug() {
		// Asking git costs a process: not for a line nobody sees.
		a.log.Debug("repository jobs start from", "dir", repo, "git", inGit(repo))
	}
	id := newRunID(time.Now())
	masker := actions.NewMasker()
	a.logMasker.Store(masker)
	// Values from env files may be secrets.
	var short []string
	for k, v := range files {
		if !masker.Add(v) {
			short = append(short, k)
		}
	}
	sort.Strings(short)
	for _, k := range short {
		fmt.Fprintf(a.stderr, "warning: --env-file value of %s is shorter than 4 characters and is not masked\n", k)
	}
	// Past what the limits on open files and processes allow, jobs would
	// fail for want of a pipe, or nixflow for want of a thread: run
	// fewer at once, and say why.
	maxParallel := f.maxParallel
	if limit, why := parallelLimit(); limit > 0 && (maxParallel == 0 || maxParallel > limit) && len(plan.Jobs) > limit {
		jobs := "jobs"
		if limit == 1 {
			jobs = "job"
		}
		fmt.Fprintf(a.stderr, "warning: running at most %d %s at once: %s (raise it to run more)\n", limit, jobs, why)
		maxParallel = limit
	}
	opts = actions.Options{
		RunID:           id,
		RunDir:          filepath.Join(runs, id),
		RepoDir:         repo,
		Exclude:         []string{state, cache},
		Registry:        registry(),
		MaxParallel:     maxParallel,
		Levels:          opts.Levels,
		Overrides:       actions.ResolveOverrides(plan, a.environ, files, flags),
		PassEnv:         f.passEnv,
		Environ:         a.environ,
		KeepWorkspace:   f.keepWorkspace,
		InterruptGrace:  f.interruptGrace,
		TerminateGrace:  f.terminateGrace,
		TeardownTimeout: 2 * time.Minute,
		Realise: func(ctx context.Context, drvs []string, root string, log func(string)) error {
			a.log.Debug("build", "command", shellQuote(append([]string{"nix-store", "--realise"}, drvs...)))
			return nixeval.Realise(ctx, drvs, root, a.environ, log)
		},
		Masker: masker,
		Logger: a.log,
	}
	return opts, nil
}

// workTree is the git work tree around dir (the workflow's directory), or
// dir itself: the project the workflow belongs to, wherever nixflow runs.
func workTree(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--show-toplevel").Output()
	if err == nil {
		if top := strings.TrimSpace(string(out)); top != "" {
			return top
		}
	}
	return dir
}

// stopSignals are the signals that cancel a run: Ctrl-C, a kill, the
// terminal closing or an SSH session dropping (SIGHUP), Ctrl-\ (SIGQUIT).
// Left to their default, the last two would kill nixflow and leave every
// step running.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// sameStop is how soon after the first stop signal another one is the
// same stop, not a second: closing a terminal sends SIGHUP twice (the
// kernel, the shell), timeout(1) SIGTERM to nixflow then to its group,
// a service manager SIGTERM and SIGHUP at once. Pressing Ctrl-C twice
// takes longer.
const sameStop = 200 * time.Millisecond

// interrupts turns the first stop signal into cancel (stop running
// steps, run cleanup jobs) and the second into abort (skip cleanup jobs,
// and cut the graces of the steps being stopped: SIGKILL at once). A
// stop signal ignored when nixflow started (SIGHUP under nohup, SIGINT
// and SIGQUIT for a background job of a script) stays ignored, as in
// the compiled script.
func (a *app) interrupts() (cancel, abort context.Context, stop func()) {
	cancel, cancelFn := context.WithCancel(context.Background())
	abort, abortFn := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	// (Noticed all the same, so that the steps start with the default
	// dispositions: an ignored signal would be ignored by them too.)
	ignored := map[os.Signal]bool{}
	for _, sig := range stopSignals {
		ignored[sig] = signal.Ignored(sig)
	}
	// Go tells only SIGHUP and SIGINT ignored at start; a shell ignores
	// SIGQUIT with SIGINT for a background job. (SIGTERM ignored at start
	// cannot be told: it stops the run.)
	ignored[syscall.SIGQUIT] = ignored[syscall.SIGQUIT] || ignored[os.Interrupt]
	signal.Notify(sigs, stopSignals...)
	// With SIGPIPE noticed (not ignored: that would pass on to the steps),
	// writing to a closed stdout (nixflow run | head) is an error the
	// console drops, not the death of nixflow with its steps orphaned.
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE)
	done := make(chan struct{})
	go func() {
		var first time.Time
		for {
			select {
			case <-done:
				return
			case sig := <-sigs:
				if ignored[sig] {
					continue
				}
				if first.IsZero() {
					first = time.Now()
					fmt.Fprintf(a.stderr, "nixflow: %v: stopping running steps; cleanup jobs still run (interrupt again to skip them)\n", sig)
					cancelFn()
					continue
				}
				if time.Since(first) < sameStop {
					continue
				}
				fmt.Fprintf(a.stderr, "nixflow: %v again: killing running steps, skipping cleanup jobs, tearing down\n", sig)
				abortFn()
			}
		}
	}()
	return cancel, abort, func() {
		signal.Stop(sigs)
		signal.Stop(pipes)
		close(done)
		cancelFn()
		abortFn()
	}
}

// colorful reports whether w is a terminal and NO_COLOR is unset.
func (a *app) colorful(w any) bool {
	if a.getenv("NO_COLOR") != "" || a.getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

// exitCode maps a run's result to nixflow's exit status.
func exitCode(res *actions.Result) int {
	if res.Cancelled {
		return ExitInterrupted
	}
	if !res.Failed() {
		return ExitOK
	}
	for _, j := range res.Jobs {
		if j.Status == event.StatusFailure && !j.Allowed &&
			(j.Domain == actions.DomainExecutor || j.Domain == actions.DomainBuild) {
			return ExitInfra
		}
	}
	return ExitFailed
}

func writePlanFile(path string, plan *compiler.Plan) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	err = writePlanJSON(f, plan)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	return nil
}

// checkCopyable refuses to copy a home directory or / into every job: a
// workflow outside any git work tree would otherwise take everything
// around it along.
func checkCopyable(repo string, plan *compiler.Plan, home string, exclude ...string) error {
	copies := false
	for _, j := range plan.Jobs {
		copies = copies || j.Executor.CopyRepo
	}
	if !copies {
		return nil
	}
	if out, err := exec.Command("git", "-C", repo, "rev-parse", "--is-inside-work-tree").Output(); err == nil && strings.TrimSpace(string(out)) == "true" {
		return nil
	}
	why := ""
	switch {
	case repo == "/":
		why = "it is /"
	case inNixStore(repo):
		why = "it is in the Nix store"
	case home != "" && filepath.Clean(home) == repo:
		why = "it is your home directory"
	}
	if why != "" {
		return usageError(fmt.Errorf("refusing to copy %s into every job: %s, not a project (and not a git work tree)", repo, why),
			"put the workflow in its project's directory and make that a git repository (git init), give the project with --repo DIR, or set copyRepo = false on its jobs")
	}
	return checkTreeSize(repo, maxCopyBytes, maxCopyFiles, exclude)
}

// jobOutcomes are the jobs of a run as its CI sections tell them.
func jobOutcomes(res *actions.Result) []output.JobOutcome {
	jobs := make([]output.JobOutcome, len(res.Jobs))
	for i, j := range res.Jobs {
		jobs[i] = output.JobOutcome{Job: j.Job, Status: j.Status, Allowed: j.Allowed, Reason: j.Reason}
	}
	return jobs
}

// emptyDir reports whether dir holds nothing (or is not there).
func emptyDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err != nil || len(entries) == 0
}
