package actions

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nixflow/nixflow/compiler"
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
