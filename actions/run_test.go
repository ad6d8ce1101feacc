package actions

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/output"
)

// TestManyJobsFewDescriptors runs more jobs than the process may open
// files, through the real per-job log sink: each job's log file must be
// closed when the job ends, or a large run dies of "too many open files":
// open log files are bounded by the running jobs, not by all jobs.
func TestManyJobsFewDescriptors(t *testing.T) {
	const jobs = 300
	var b strings.Builder
	b.WriteString(`{"version": 1, "name": "many", "jobs": {`)
	for i := 0; i < jobs; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"j%03d": {"steps": [{"bash": "true"}]}`, i)
	}
	b.WriteString("}}")
	plan, err := compiler.Compile("many.json", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logs, err := output.NewJobLogs(filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}

	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd to count descriptors")
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(len(open) + 64) // far fewer than the jobs
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)

	reg := executors.NewRegistry()
	reg.Register("local", func(executors.Params) (executors.Executor, error) { return nopExecutor{}, nil })
	ctx := context.Background()
	res, err := Run(ctx, ctx, plan, Options{
		RunID: "many", RunDir: filepath.Join(dir, "run"), RepoDir: dir,
		Registry: reg, MaxParallel: 8, Sink: logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := logs.Close(); err != nil {
		t.Fatalf("closing logs: %v", err)
	}
	if res.Failed() {
		for _, j := range res.Jobs {
			if j.Status != event.StatusSuccess {
				t.Fatalf("job %s: %s: %s", j.Job, j.Status, j.Reason)
			}
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "logs"))
	if err != nil || len(entries) != jobs {
		t.Fatalf("%d log files (%v), want %d", len(entries), err, jobs)
	}
}

// brokenExecutor's steps cannot run: Run fails as a lost connection does.
type brokenExecutor struct{ nopExecutor }

func (brokenExecutor) Prepare(_ context.Context, spec executors.JobSpec) (executors.Workspace, error) {
	return &brokenWorkspace{nopWorkspace{dir: "/nop/jobs/" + spec.Job, tmp: "/nop/tmp/" + spec.Job}}, nil
}

type brokenWorkspace struct{ nopWorkspace }

func (w *brokenWorkspace) Run(context.Context, executors.Command) (executors.Result, error) {
	return executors.Result{}, fmt.Errorf("host h: connection lost")
}

// TestRunErrorIsExecutorFailure checks that a step whose Run fails (the
// executor's failure, not the step's) fails its job in the executor
// domain, which the CLI reports with exit status 3.
func TestRunErrorIsExecutorFailure(t *testing.T) {
	plan, err := compiler.Compile("x.json", []byte(`{"version": 1, "name": "x", "jobs": {"a": {"steps": [{"name": "s", "bash": "true"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	reg := executors.NewRegistry()
	reg.Register("local", func(executors.Params) (executors.Executor, error) { return brokenExecutor{}, nil })
	ctx := context.Background()
	res, err := Run(ctx, ctx, plan, Options{RunID: "x", RunDir: filepath.Join(dir, "run"), RepoDir: dir, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	j := res.Jobs[0]
	if j.Status != event.StatusFailure || j.Domain != DomainExecutor || !strings.Contains(j.Reason, "connection lost") {
		t.Errorf("job: %s (%s): %s; want an executor failure", j.Status, j.Domain, j.Reason)
	}
}
