package actions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/internal/eventtest"
)

// hosts is an executor whose every Prepare gives a workspace on a new
// "host" (host-1, host-2, ...); the step named lose loses the workspace
// of host-1 (Run fails with executors.ErrWorkspaceLost), or, with
// afterStep, loses it once the step has run (reading its control files
// fails so); Prepare fails from the failAt-th call on, if set.
type hosts struct {
	lose      string
	afterStep bool
	failAt    int
	mu        sync.Mutex
	log       []string
	prepare   int
}

func (x *hosts) logf(format string, args ...any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.log = append(x.log, fmt.Sprintf(format, args...))
}

func (x *hosts) Prepare(_ context.Context, spec executors.JobSpec) (executors.Workspace, error) {
	x.mu.Lock()
	x.prepare++
	n := x.prepare
	x.mu.Unlock()
	if x.failAt > 0 && n >= x.failAt {
		x.logf("prepare failed")
		return nil, errors.New("every host of the pool is down")
	}
	ws := &hostWorkspace{x: x, where: fmt.Sprintf("host-%d", n)}
	x.logf("prepare %s", ws.where)
	return ws, nil
}

func (x *hosts) Close(context.Context) error { return nil }

type hostWorkspace struct {
	x     *hosts
	where string
	gone  bool
}

func (w *hostWorkspace) lost() error {
	return fmt.Errorf("host %s: connection lost: %w", w.where, executors.ErrWorkspaceLost)
}

func (w *hostWorkspace) Dir() string     { return "/fake/" + w.where }
func (w *hostWorkspace) TempDir() string { return "/fake/tmp-" + w.where }
func (w *hostWorkspace) Where() string   { return w.where }
func (w *hostWorkspace) CopyIn(_ context.Context, src, _ string) error {
	return fmt.Errorf("copy in %q: %w", src, fs.ErrNotExist)
}
func (w *hostWorkspace) CopyOut(_ context.Context, src, _ string) error {
	if w.gone {
		return w.lost()
	}
	return fmt.Errorf("copy out %q: %w", src, fs.ErrNotExist)
}
func (w *hostWorkspace) Teardown(context.Context, bool) error {
	w.x.logf("teardown %s", w.where)
	if w.where == "host-1" {
		return errors.New("host-1 is gone")
	}
	return nil
}

func (w *hostWorkspace) Run(_ context.Context, cmd executors.Command) (executors.Result, error) {
	step := ""
	for _, kv := range cmd.Env {
		if v, ok := strings.CutPrefix(kv, "NIXFLOW_STEP="); ok {
			step = v
		}
	}
	if step == w.x.lose && w.where == "host-1" {
		w.x.logf("%s on %s: lost", step, w.where)
		if w.x.afterStep {
			w.gone = true
			return executors.Result{}, nil
		}
		return executors.Result{ExitCode: 255}, w.lost()
	}
	w.x.logf("%s on %s", step, w.where)
	return executors.Result{}, nil
}

// TestLostWorkspace checks that a step whose workspace is lost with its
// host (executors.ErrWorkspaceLost) fails the job as an executor failure
// without retry, and with retry makes the job start again, from its first
// step, in a new workspace, the lost one torn down.
func TestLostWorkspace(t *testing.T) {
	tests := []struct {
		name       string
		retry      string
		afterStep  bool
		failAt     int
		wantStatus event.Status
		wantDomain Domain
		wantReason string
		wantWhere  string
		wantSteps  []stepOutcome
		wantLog    []string
	}{
		{
			name:       "no retry: an executor failure",
			wantStatus: event.StatusFailure, wantDomain: DomainExecutor,
			wantReason: `step "b" could not run: host host-1: connection lost: workspace lost`,
			wantWhere:  "host-1",
			wantSteps: []stepOutcome{{"a", event.StatusSuccess, "", 1},
				{"b", event.StatusFailure, "could not run: host host-1: connection lost: workspace lost", 1},
				{"c", event.StatusSkipped, "an earlier step failed", 0}},
			wantLog: []string{"prepare host-1", "a on host-1", "b on host-1: lost", "teardown host-1"},
		},
		{
			name:       "retry: the job starts again on another host",
			retry:      `, "retry": {"maxAttempts": 3}`,
			wantStatus: event.StatusSuccess,
			wantWhere:  "host-2",
			wantSteps:  []stepOutcome{{"a", event.StatusSuccess, "", 1}, {"b", event.StatusSuccess, "", 2}, {"c", event.StatusSuccess, "", 1}},
			wantLog: []string{"prepare host-1", "a on host-1", "b on host-1: lost", "teardown host-1",
				"prepare host-2", "a on host-2", "b on host-2", "c on host-2", "teardown host-2"},
		},
		{
			name:       "lost after the step, no retry: an executor failure",
			afterStep:  true,
			wantStatus: event.StatusFailure, wantDomain: DomainExecutor,
			wantReason: `step "b" read the control files (JOB_ENV, JOB_PATH, JOB_OUTPUT): host host-1: connection lost: workspace lost`,
			wantWhere:  "host-1",
			wantSteps: []stepOutcome{{"a", event.StatusSuccess, "", 1},
				{"b", event.StatusFailure, "read the control files (JOB_ENV, JOB_PATH, JOB_OUTPUT): host host-1: connection lost: workspace lost", 1},
				{"c", event.StatusSkipped, "an earlier step failed", 0}},
			wantLog: []string{"prepare host-1", "a on host-1", "b on host-1: lost", "teardown host-1"},
		},
		{
			name:       "lost after the step, retry: the job starts again on another host",
			retry:      `, "retry": {"maxAttempts": 2}`,
			afterStep:  true,
			wantStatus: event.StatusSuccess,
			wantWhere:  "host-2",
			wantSteps:  []stepOutcome{{"a", event.StatusSuccess, "", 1}, {"b", event.StatusSuccess, "", 2}, {"c", event.StatusSuccess, "", 1}},
			wantLog: []string{"prepare host-1", "a on host-1", "b on host-1: lost", "teardown host-1",
				"prepare host-2", "a on host-2", "b on host-2", "c on host-2", "teardown host-2"},
		},
		{
			name:       "retry, but no host left",
			retry:      `, "retry": {"maxAttempts": 2}`,
			failAt:     2,
			wantStatus: event.StatusFailure, wantDomain: DomainExecutor,
			wantReason: `prepare local workspace again (step "b" lost its workspace on host-1): every host of the pool is down`,
			wantLog:    []string{"prepare host-1", "a on host-1", "b on host-1: lost", "teardown host-1", "prepare failed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			graph := `{"version": 1, "name": "lost", "jobs": {"j": {"steps": [{"name": "a", "bash": "x"},
				{"name": "b", "bash": "x"` + tt.retry + `}, {"name": "c", "bash": "x"}]}}}`
			plan, err := compiler.Compile("graph.json", []byte(graph))
			if err != nil {
				t.Fatal(err)
			}
			x := &hosts{lose: "b", afterStep: tt.afterStep, failAt: tt.failAt}
			reg := executors.NewRegistry()
			reg.Register("local", func(executors.Params) (executors.Executor, error) { return x, nil })
			events := &eventtest.Recorder{}
			dir := t.TempDir()
			ctx := context.Background()
			res, err := Run(ctx, ctx, plan, Options{RunID: "lost", RunDir: filepath.Join(dir, "run"), RepoDir: dir,
				Registry: reg, Sink: events})
			if err != nil {
				t.Fatal(err)
			}
			j := res.Jobs[0]
			if j.Status != tt.wantStatus || j.Domain != tt.wantDomain || j.Reason != tt.wantReason || j.Where != tt.wantWhere {
				t.Errorf("job: %s %s %q on %q, want %s %s %q on %q", j.Status, j.Domain, j.Reason, j.Where,
					tt.wantStatus, tt.wantDomain, tt.wantReason, tt.wantWhere)
			}
			if diff := cmp.Diff(tt.wantSteps, outcomes(j)); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLog, x.log); diff != "" {
				t.Errorf("executor calls (-want +got):\n%s", diff)
			}
			var warned, retried bool
			for _, ev := range events.Events() {
				warned = warned || (ev.Event == event.Warning && strings.Contains(ev.Message,
					`the workspace on host-1 was lost during step "b": `) &&
					strings.HasSuffix(ev.Message, `host host-1: connection lost: workspace lost; preparing the job again, to run from its first step`))
				retried = retried || (ev.Event == event.StepRetry && ev.Step == "b" && ev.Attempt == 2 &&
					strings.HasSuffix(ev.Message, "retrying in a new workspace"))
			}
			if want := tt.retry != ""; warned != want || retried != want {
				t.Errorf("warning sent %v, retry sent %v, want %v", warned, retried, want)
			}
		})
	}
}
