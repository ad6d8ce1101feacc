package actions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/executors"
)

// These tests run the step runner against a scripted workspace inside a
// synctest bubble: time is fake, so retry, timeout and cancellation
// interleavings are exact and take no real time.

// act is what one attempt of a step does: run for d, then exit with
// code, unless stopped first.
type act struct {
	d    time.Duration
	code int
}

// scripted is an executor whose steps follow a script, keyed by step
// name: attempt n does script[step][n] (the last entry repeats). It logs
// when each command starts and how it ends, in fake time since the
// bubble started.
type scripted struct {
	script map[string][]act
	start  time.Time
	// artifacts: CopyOut makes the artifact (an empty directory) and
	// CopyIn takes until its context ends.
	artifacts bool
	// prepare is how long Prepare takes (a slow pull or boot), unless
	// its context ends first.
	prepare time.Duration
	// copyOut, if set, is what CopyOut does.
	copyOut func(src, dst string) error

	mu    sync.Mutex
	calls map[string]int
	log   []string
	stops []executors.Signals
}

func (x *scripted) Prepare(ctx context.Context, _ executors.JobSpec) (executors.Workspace, error) {
	if x.prepare > 0 {
		t := time.NewTimer(x.prepare)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("boot: %w", ctx.Err())
		}
	}
	return x, nil
}
func (x *scripted) Close(context.Context) error { return nil }
func (x *scripted) Dir() string                 { return "/fake/ws" }
func (x *scripted) TempDir() string             { return "/fake/tmp" }
func (x *scripted) Where() string               { return "scripted" }
func (x *scripted) CopyIn(ctx context.Context, src, _ string) error {
	if x.artifacts {
		<-ctx.Done()
		return fmt.Errorf("copy in %q: %w", src, ctx.Err())
	}
	return fmt.Errorf("copy in %q: %w", src, fs.ErrNotExist)
}
func (x *scripted) CopyOut(_ context.Context, src, dst string) error {
	if x.copyOut != nil {
		return x.copyOut(src, dst)
	}
	if x.artifacts {
		return os.Mkdir(dst, 0o755)
	}
	return fmt.Errorf("copy out %q: %w", src, fs.ErrNotExist)
}
func (x *scripted) Teardown(context.Context, bool) error { return nil }

func (x *scripted) logf(format string, args ...any) {
	x.log = append(x.log, fmt.Sprintf("%v ", time.Since(x.start))+fmt.Sprintf(format, args...))
}

func (x *scripted) Run(ctx context.Context, cmd executors.Command) (executors.Result, error) {
	step := ""
	for _, kv := range cmd.Env {
		if v, ok := strings.CutPrefix(kv, "NIXFLOW_STEP="); ok {
			step = v
		}
	}
	x.mu.Lock()
	if ctx.Err() != nil {
		x.mu.Unlock()
		return executors.Result{ExitCode: -1, Stopped: true}, nil
	}
	n := x.calls[step]
	x.calls[step]++
	acts := x.script[step]
	a := acts[min(n, len(acts)-1)]
	x.logf("%s start", step)
	x.mu.Unlock()

	t := time.NewTimer(a.d)
	defer t.Stop()
	select {
	case <-t.C:
		x.mu.Lock()
		x.logf("%s exit %d", step, a.code)
		x.mu.Unlock()
		return executors.Result{ExitCode: a.code}, nil
	case <-ctx.Done():
		sig := cmd.Stop()
		x.mu.Lock()
		x.logf("%s stopped", step)
		x.stops = append(x.stops, sig)
		x.mu.Unlock()
		return executors.Result{ExitCode: 143, Stopped: true}, nil
	}
}

// runScripted compiles graph, runs it against script, calling cancel
// and abort at the given fake times (0: never), and returns the result
// and the executor.
func runScripted(t *testing.T, graph string, script map[string][]act, cancelAt, abortAt time.Duration) (*Result, *scripted) {
	t.Helper()
	return runScriptedWith(t, &scripted{script: script}, graph, cancelAt, abortAt)
}

// runScriptedWith is runScripted with an executor set up by the caller.
func runScriptedWith(t *testing.T, x *scripted, graph string, cancelAt, abortAt time.Duration) (*Result, *scripted) {
	t.Helper()
	plan, err := compiler.Compile("graph.json", []byte(graph))
	if err != nil {
		t.Fatal(err)
	}
	x.start, x.calls = time.Now(), map[string]int{}
	reg := executors.NewRegistry()
	reg.Register("local", func(executors.Params) (executors.Executor, error) { return x, nil })
	cancel, cancelFn := context.WithCancel(context.Background())
	abort, abortFn := context.WithCancel(context.Background())
	defer cancelFn()
	defer abortFn()
	if cancelAt > 0 {
		time.AfterFunc(cancelAt, cancelFn)
	}
	if abortAt > 0 {
		time.AfterFunc(abortAt, abortFn)
	}
	dir := t.TempDir()
	res, err := Run(cancel, abort, plan, Options{
		RunID: "fake", RunDir: filepath.Join(dir, "run"), RepoDir: dir, Registry: reg,
		InterruptGrace: time.Second, TerminateGrace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res, x
}

type stepOutcome struct {
	Step     string
	Status   event.Status
	Reason   string
	Attempts int
}

func outcomes(j *JobResult) []stepOutcome {
	var out []stepOutcome
	for _, s := range j.Steps {
		out = append(out, stepOutcome{s.Step, s.Status, s.Reason, s.Attempts})
	}
	return out
}

func TestStepRunnerTiming(t *testing.T) {
	tests := []struct {
		name              string
		job               string
		script            map[string][]act
		cancelAt, abortAt time.Duration
		wantJob           event.Status
		wantReason        string
		wantSteps         []stepOutcome
		wantLog           []string
	}{
		{
			// The flaky run_timeout case: the time left before the deadline
			// (200.4ms) was rounded down to 200ms, the wait ended just
			// before the deadline and a third attempt started.
			name: "job deadline during a retry wait, not ms-aligned",
			job: `{"timeout": "2s", "steps": [{"name": "s", "bash": "x",
				"retry": {"maxAttempts": 5, "minTime": 1.2, "backoff": "constant"}}]}`,
			script:     map[string][]act{"s": {{299800 * time.Microsecond, 3}}},
			wantJob:    event.StatusFailure,
			wantReason: `job timed out after 2s in step "s" (after 2 attempts)`,
			wantSteps:  []stepOutcome{{"s", event.StatusFailure, "job timed out after 2s (after 2 attempts)", 2}},
			wantLog:    []string{"0s s start", "299.8ms s exit 3", "1.4998s s start", "1.7996s s exit 3"},
		},
		{
			name: "a wait ending exactly at the job deadline starts no attempt",
			job: `{"timeout": "2s", "steps": [{"name": "s", "bash": "x",
				"retry": {"maxAttempts": 5, "minTime": 1.2, "backoff": "constant"}}]}`,
			script:     map[string][]act{"s": {{800 * time.Millisecond, 3}}},
			wantJob:    event.StatusFailure,
			wantReason: `job timed out after 2s in step "s" (after 1 attempt)`,
			wantSteps:  []stepOutcome{{"s", event.StatusFailure, "job timed out after 2s (after 1 attempt)", 1}},
			wantLog:    []string{"0s s start", "800ms s exit 3"},
		},
		{
			name: "job deadline during an attempt: later steps skipped, always() runs",
			job: `{"timeout": "1s", "steps": [{"name": "a", "bash": "x"}, {"name": "b", "bash": "x"},
				{"name": "c", "bash": "x", "condition": "always()"}]}`,
			script:     map[string][]act{"a": {{time.Hour, 0}}, "b": {{0, 0}}, "c": {{100 * time.Millisecond, 0}}},
			wantJob:    event.StatusFailure,
			wantReason: `job timed out after 1s in step "a"`,
			wantSteps: []stepOutcome{{"a", event.StatusFailure, "job timed out after 1s", 1},
				{"b", event.StatusSkipped, "the job timed out", 0}, {"c", event.StatusSuccess, "", 1}},
			wantLog: []string{"0s a start", "1s a stopped", "1s c start", "1.1s c exit 0"},
		},
		{
			name:       "step and job timeouts at the same moment: the job's",
			job:        `{"timeout": "1s", "steps": [{"name": "s", "bash": "x", "timeout": "1s"}]}`,
			script:     map[string][]act{"s": {{time.Hour, 0}}},
			wantJob:    event.StatusFailure,
			wantReason: `job timed out after 1s in step "s"`,
			wantSteps:  []stepOutcome{{"s", event.StatusFailure, "job timed out after 1s", 1}},
			wantLog:    []string{"0s s start", "1s s stopped"},
		},
		{
			name: "a step timeout is retried",
			job: `{"steps": [{"name": "s", "bash": "x", "timeout": "500ms",
				"retry": {"maxAttempts": 2, "minTime": 0}}]}`,
			script:     map[string][]act{"s": {{time.Hour, 0}}},
			wantJob:    event.StatusFailure,
			wantReason: `step "s" timed out after 500ms (after 2 attempts)`,
			wantSteps:  []stepOutcome{{"s", event.StatusFailure, "timed out after 500ms (after 2 attempts)", 2}},
			wantLog:    []string{"0s s start", "500ms s stopped", "500ms s start", "1s s stopped"},
		},
		{
			name: "cancel during a retry wait",
			job: `{"steps": [{"name": "s", "bash": "x",
				"retry": {"maxAttempts": 3, "minTime": 10, "backoff": "constant"}},
				{"name": "c", "bash": "x", "condition": "always()"}]}`,
			script:     map[string][]act{"s": {{time.Second, 1}}, "c": {{0, 0}}},
			cancelAt:   2 * time.Second,
			wantJob:    event.StatusCancelled,
			wantReason: "run cancelled",
			wantSteps:  []stepOutcome{{"s", event.StatusCancelled, "run cancelled", 1}, {"c", event.StatusSuccess, "", 1}},
			wantLog:    []string{"0s s start", "1s s exit 1", "2s c start", "2s c exit 0"},
		},
		{
			name: "cancel during an attempt, then abort during the cleanup step",
			job: `{"steps": [{"name": "s", "bash": "x"},
				{"name": "c", "bash": "x", "condition": "always()"}]}`,
			script:     map[string][]act{"s": {{time.Hour, 0}}, "c": {{time.Hour, 0}}},
			cancelAt:   time.Second,
			abortAt:    3 * time.Second,
			wantJob:    event.StatusCancelled,
			wantReason: "run cancelled",
			wantSteps:  []stepOutcome{{"s", event.StatusCancelled, "run cancelled", 1}, {"c", event.StatusCancelled, "run cancelled", 1}},
			wantLog:    []string{"0s s start", "1s s stopped", "1s c start", "3s c stopped"},
		},
		{
			name:       "cancel racing a job timeout: cancelled first",
			job:        `{"timeout": "2s", "steps": [{"name": "s", "bash": "x"}]}`,
			script:     map[string][]act{"s": {{time.Hour, 0}}},
			cancelAt:   time.Second,
			wantJob:    event.StatusCancelled,
			wantReason: "run cancelled",
			wantSteps:  []stepOutcome{{"s", event.StatusCancelled, "run cancelled", 1}},
			wantLog:    []string{"0s s start", "1s s stopped"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				graph := `{"version": 1, "name": "timing", "jobs": {"j": ` + tt.job + `}}`
				res, x := runScripted(t, graph, tt.script, tt.cancelAt, tt.abortAt)
				j := res.Jobs[0]
				if j.Status != tt.wantJob || j.Reason != tt.wantReason {
					t.Errorf("job: %s %q, want %s %q", j.Status, j.Reason, tt.wantJob, tt.wantReason)
				}
				if diff := cmp.Diff(tt.wantSteps, outcomes(j)); diff != "" {
					t.Errorf("steps (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantLog, x.log); diff != "" {
					t.Errorf("commands (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestStopSignals: a step stopped by the first Ctrl-C gets SIGINT first,
// with the graces; a step stopped by a timeout gets SIGTERM first; once
// the run is aborted, Hurry is closed so that the executor skips the
// graces.
func TestStopSignals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		graph := `{"version": 1, "name": "signals", "jobs": {"j": {"steps": [
			{"name": "t", "bash": "x", "timeout": "1s"}]}}}`
		_, x := runScripted(t, graph, map[string][]act{"t": {{time.Hour, 0}}}, 0, 0)
		if len(x.stops) != 1 || x.stops[0].FirstSignalInterrupt {
			t.Fatalf("stops %+v: want 1, by SIGTERM", x.stops)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		graph := `{"version": 1, "name": "signals", "jobs": {"j": {"steps": [
			{"name": "s", "bash": "x"}, {"name": "c", "bash": "x", "condition": "always()"}]}}}`
		script := map[string][]act{"s": {{time.Hour, 0}}, "c": {{time.Hour, 0}}}
		_, x := runScripted(t, graph, script, time.Second, 2*time.Second)
		if len(x.stops) != 2 {
			t.Fatalf("stops %+v: want 2", x.stops)
		}
		first, second := x.stops[0], x.stops[1]
		if !first.FirstSignalInterrupt || first.InterruptGrace != time.Second {
			t.Errorf("first stop %+v: want SIGINT first with the graces", first)
		}
		select {
		case <-second.Hurry:
		default:
			t.Errorf("second stop: Hurry not closed after the abort")
		}
	})
}

// A second Ctrl-C that stops a cleanup job while its inputs are copied in
// cancels the job: no executor failed.
func TestAbortDuringCopyIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		graph := `{"version": 1, "name": "copy", "jobs": {
		  "p": {"steps": [{"name": "make", "bash": "true"}], "outputs": {"big": "big"}},
		  "q": {"needs": ["p"], "condition": "always()", "inputs": ["big"], "steps": [{"name": "use", "bash": "true"}]}}}`
		x := &scripted{script: map[string][]act{"make": {{d: 2 * time.Second}}, "use": {{d: time.Second}}}, artifacts: true}
		res, _ := runScriptedWith(t, x, graph, 3*time.Second, 4*time.Second)
		var q *JobResult
		for _, j := range res.Jobs {
			if j.Job == "q" {
				q = j
			}
		}
		if q == nil || q.Status != event.StatusCancelled || q.Reason != "run cancelled" || q.Domain != "" {
			t.Fatalf("job q: %+v, want cancelled (run cancelled), no failure domain", q)
		}
		if !res.Cancelled {
			t.Error("the run is not recorded as cancelled")
		}
	})
}

// TestJobTimeoutBoundsPrepare makes preparing the workspace slower than
// the job's timeout (an image pull, an instance that never answers): the
// job fails at its deadline, timed out, not after the executor gives up.
func TestJobTimeoutBoundsPrepare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		graph := `{"version": 1, "name": "slow", "jobs": {
		  "j": {"timeout": "2s", "steps": [{"name": "s", "bash": "true"}]}}}`
		x := &scripted{script: map[string][]act{"s": {{d: time.Second}}}, prepare: 5 * time.Minute}
		start := time.Now()
		res, _ := runScriptedWith(t, x, graph, 0, 0)
		j := res.Jobs[0]
		if j.Status != event.StatusFailure || j.Reason != "job timed out after 2s while its local workspace was prepared" {
			t.Errorf("job: %s %q, want failure, timed out while prepared", j.Status, j.Reason)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("the job took %v, want its 2s timeout", d)
		}
		if len(x.log) != 0 {
			t.Errorf("steps ran: %v", x.log)
		}
	})
}

// TestOutputCopyFails: an output whose copy fails half-way (a file the
// step made unreadable) leaves no part of itself in the run directory,
// and fails the job as the step's fault.
func TestOutputCopyFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		graph := `{"version": 1, "name": "partial", "jobs": {
		  "p": {"steps": [{"name": "make", "bash": "true"}], "outputs": {"bundle": "out"}}}}`
		var artifact string
		x := &scripted{script: map[string][]act{"make": {{d: time.Second}}}}
		x.copyOut = func(src, dst string) error {
			if src != "out" {
				return fmt.Errorf("copy out %q: %w", src, fs.ErrNotExist) // no control file
			}
			artifact = filepath.Dir(dst)
			if err := os.MkdirAll(filepath.Join(dst, "ro"), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dst, "ro", "f"), []byte("part"), 0o644); err != nil {
				return err
			}
			return fmt.Errorf("copy out %q: openat secret: %w", src, fs.ErrPermission)
		}
		res, _ := runScriptedWith(t, x, graph, 0, 0)
		j := res.Jobs[0]
		if j.Status != event.StatusFailure || j.Domain != DomainStep || !strings.Contains(j.Reason, "permission denied") {
			t.Errorf("job: %s (%s) %q, want a step failure naming the permission", j.Status, j.Domain, j.Reason)
		}
		if artifact == "" {
			t.Fatal("no output was copied")
		}
		if _, err := os.Lstat(artifact); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the failed artifact's directory is left: %v", err)
		}
	})
}
