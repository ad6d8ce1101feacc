package actions

// Scripted executors whose host goes away: it stops answering while a
// job's outputs are saved, or drops the connection during a step or as
// the step is stopped.

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/internal/eventtest"
)

// hungHost is an executor whose workspace's host stops answering once its
// step ran: copying out hangs until its context ends, and Ping fails.
type hungHost struct {
	copying chan struct{} // closed as the copy starts
	pinged  atomic.Int32
}

func (x *hungHost) Prepare(context.Context, executors.JobSpec) (executors.Workspace, error) {
	return &hungWorkspace{x: x}, nil
}
func (x *hungHost) Close(context.Context) error { return nil }

type hungWorkspace struct{ x *hungHost }

func (w *hungWorkspace) Dir() string                                  { return "/fake/ws" }
func (w *hungWorkspace) TempDir() string                              { return "/fake/tmp" }
func (w *hungWorkspace) Where() string                                { return "hung-host" }
func (w *hungWorkspace) CopyIn(context.Context, string, string) error { return nil }
func (w *hungWorkspace) Teardown(context.Context, bool) error         { return nil }
func (w *hungWorkspace) Run(context.Context, executors.Command) (executors.Result, error) {
	return executors.Result{}, nil
}
func (w *hungWorkspace) ReadTempFile(string) ([]byte, error) { return nil, nil }
func (w *hungWorkspace) CopyOut(ctx context.Context, _, _ string) error {
	close(w.x.copying)
	<-ctx.Done()
	return ctx.Err()
}
func (w *hungWorkspace) Ping() error {
	w.x.pinged.Add(1)
	return context.DeadlineExceeded
}

// TestSaveOutputsHungHost: a job saving its outputs finishes saving them
// after a second Ctrl-C, unless its host does not answer (Ping fails):
// then the copy stops and the run ends.
func TestSaveOutputsHungHost(t *testing.T) {
	plan, err := compiler.Compile("graph.json", []byte(`{"version": 1, "name": "hung", "jobs": {"j": {
		"steps": [{"name": "a", "bash": "x"}], "outputs": {"o": "out"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	x := &hungHost{copying: make(chan struct{})}
	reg := executors.NewRegistry()
	reg.Register("local", func(executors.Params) (executors.Executor, error) { return x, nil })
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	abort, hurry := context.WithCancel(context.Background())
	defer cancel()
	defer hurry()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, abort, plan, Options{RunID: "hung", RunDir: filepath.Join(dir, "run"), RepoDir: dir,
			Registry: reg, Sink: &eventtest.Recorder{}})
		done <- err
	}()
	select {
	case <-x.copying:
	case err := <-done:
		t.Fatalf("the run ended before it saved the outputs: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the outputs' copy did not start")
	}
	cancel()
	hurry()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the run still saves the outputs of a host that does not answer, 10 s after a second Ctrl-C")
	}
	if x.pinged.Load() == 0 {
		t.Error("the host was not asked whether it answers")
	}
}

// lostTeardown is an executor whose host goes away during the step: Run
// and Teardown both fail with executors.ErrWorkspaceLost.
type lostTeardown struct{ hungWorkspace }

func (w *lostTeardown) Run(context.Context, executors.Command) (executors.Result, error) {
	return executors.Result{}, fmt.Errorf("connection lost: %w", executors.ErrWorkspaceLost)
}
func (w *lostTeardown) Teardown(context.Context, bool) error {
	return fmt.Errorf("remove workspace: connection lost: %w", executors.ErrWorkspaceLost)
}

// TestLostTeardownQuiet: the teardown of a workspace whose host went
// away, in a job that failed of it, is no error of its own in the log
// (the job's failure says it).
func TestLostTeardownQuiet(t *testing.T) {
	plan, err := compiler.Compile("graph.json", []byte(`{"version": 1, "name": "lost", "jobs": {"j": {"steps": [{"name": "a", "bash": "x"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	reg := executors.NewRegistry()
	reg.Register("local", func(executors.Params) (executors.Executor, error) {
		return executorFunc(func() executors.Workspace { return &lostTeardown{} }), nil
	})
	var log bytes.Buffer
	dir := t.TempDir()
	ctx := context.Background()
	res, err := Run(ctx, ctx, plan, Options{RunID: "lost", RunDir: filepath.Join(dir, "run"), RepoDir: dir,
		Registry: reg, Sink: &eventtest.Recorder{}, Logger: hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	if j := res.Jobs[0]; j.Status != event.StatusFailure || j.Domain != DomainExecutor {
		t.Errorf("job: %s %s %q", j.Status, j.Domain, j.Reason)
	}
	if strings.Contains(log.String(), "teardown") {
		t.Errorf("the log tells of the lost teardown:\n%s", log.String())
	}
}

// executorFunc is an executor whose Prepare returns a new workspace.
type executorFunc func() executors.Workspace

func (f executorFunc) Prepare(context.Context, executors.JobSpec) (executors.Workspace, error) {
	return f(), nil
}
func (f executorFunc) Close(context.Context) error { return nil }

// partitioned is a workspace whose host stops answering while its step
// is stopped: Run returns stopped, with executors.ErrWorkspaceLost.
type partitioned struct {
	hungWorkspace
	running chan struct{}
}

func (w *partitioned) Run(ctx context.Context, _ executors.Command) (executors.Result, error) {
	close(w.running)
	<-ctx.Done()
	return executors.Result{ExitCode: -1, Stopped: true}, fmt.Errorf("connection lost: %w", executors.ErrWorkspaceLost)
}

// TestCancelledOnPartitionedHost: a run cancelled while a step, or a
// step's condition, runs on a host that stops answering as it is stopped
// is a cancelled run, not an executor failure.
func TestCancelledOnPartitionedHost(t *testing.T) {
	for name, step := range map[string]string{
		"step":      `{"name": "a", "bash": "x"}`,
		"condition": `{"name": "a", "bash": "x", "condition": "test -e here"}`,
	} {
		t.Run(name, func(t *testing.T) {
			plan, err := compiler.Compile("graph.json", []byte(`{"version": 1, "name": "part", "jobs": {"j": {"steps": [`+step+`]}}}`))
			if err != nil {
				t.Fatal(err)
			}
			ws := &partitioned{running: make(chan struct{})}
			reg := executors.NewRegistry()
			reg.Register("local", func(executors.Params) (executors.Executor, error) {
				return executorFunc(func() executors.Workspace { return ws }), nil
			})
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-ws.running
				cancel()
			}()
			res, err := Run(ctx, context.Background(), plan, Options{RunID: "part", RunDir: filepath.Join(dir, "run"), RepoDir: dir,
				Registry: reg, Sink: &eventtest.Recorder{}})
			if err != nil {
				t.Fatal(err)
			}
			if j := res.Jobs[0]; j.Status != event.StatusCancelled {
				t.Errorf("job: %s %s %q; want cancelled", j.Status, j.Domain, j.Reason)
			}
		})
	}
}
