package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/output"
)

// nopExecutor is an in-memory executor that starts no process: every
// command succeeds at once. It isolates the engine's own cost per job
// (scheduling, conditions, environment, events, control files) from the
// cost of starting processes.
type nopExecutor struct{}

func (nopExecutor) Prepare(_ context.Context, spec executors.JobSpec) (executors.Workspace, error) {
	return &nopWorkspace{dir: "/nop/jobs/" + spec.Job, tmp: "/nop/tmp/" + spec.Job}, nil
}

func (nopExecutor) Close(context.Context) error { return nil }

type nopWorkspace struct{ dir, tmp string }

func (w *nopWorkspace) Dir() string     { return w.dir }
func (w *nopWorkspace) TempDir() string { return w.tmp }
func (w *nopWorkspace) Where() string   { return "nowhere" }

func (w *nopWorkspace) Run(context.Context, executors.Command) (executors.Result, error) {
	return executors.Result{}, nil
}

// The workspace holds no files: every copy is of a missing file.
func (w *nopWorkspace) CopyIn(_ context.Context, src, _ string) error {
	return fmt.Errorf("nop workspace: copy in %q: %w", src, fs.ErrNotExist)
}

func (w *nopWorkspace) CopyOut(_ context.Context, src, _ string) error {
	return fmt.Errorf("nop workspace: copy out %q: %w", src, fs.ErrNotExist)
}

func (w *nopWorkspace) Teardown(context.Context, bool) error { return nil }

// benchPlan compiles a workflow of n one-step no-op jobs forming a random
// DAG (fixed seed): job i needs up to 4 distinct jobs among jobs 0..i-1.
func benchPlan(b *testing.B, n int) *compiler.Plan {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	name := func(i int) string { return fmt.Sprintf("job-%05d", i) }
	jobs := make(map[string]any, n)
	for i := range n {
		needs := []string{}
		if i > 0 {
			seen := map[int]bool{}
			for range rng.IntN(5) {
				if d := rng.IntN(i); !seen[d] {
					seen[d] = true
					needs = append(needs, name(d))
				}
			}
		}
		jobs[name(i)] = map[string]any{
			"executor": map[string]any{"type": "local", "copyRepo": false},
			"needs":    needs,
			"steps":    []any{map[string]any{"name": "noop", "bash": "true"}},
		}
	}
	data, err := json.Marshal(map[string]any{"version": 1, "name": "bench", "jobs": jobs})
	if err != nil {
		b.Fatal(err)
	}
	plan, err := compiler.Compile("bench.json", data)
	if err != nil {
		b.Fatal(err)
	}
	return plan
}

// BenchmarkRunNoop runs a plan of 1,000 no-op jobs through Run with an
// executor that starts nothing, and reports the engine's overhead per job
// (ns/job). The target is well under 2 ms per job; this benchmark only
// reports, it asserts no time.
//
// sinks=none is Run with no sink, as a library caller may use it;
// sinks=cli adds what `nixflow run` adds: a console in the simple format
// (to io.Discard) and the per-job log files.
func BenchmarkRunNoop(b *testing.B) {
	const n = 1000
	plan := benchPlan(b, n)
	reg := executors.NewRegistry()
	reg.Register("local", func(executors.Params) (executors.Executor, error) { return nopExecutor{}, nil })
	for _, sinks := range []string{"none", "cli"} {
		for _, levels := range []bool{false, true} {
			sched := "ready"
			if levels {
				sched = "levels"
			}
			b.Run(fmt.Sprintf("jobs=%d/sched=%s/sinks=%s", n, sched, sinks), func(b *testing.B) {
				base := b.TempDir()
				ctx := context.Background()
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					id := "bench-" + strconv.Itoa(i)
					opts := Options{
						RunID:       id,
						RunDir:      filepath.Join(base, id),
						RepoDir:     base,
						Registry:    reg,
						MaxParallel: 0,
						Levels:      levels,
					}
					var logs *output.JobLogs
					if sinks == "cli" {
						var err error
						if logs, err = output.NewJobLogs(filepath.Join(opts.RunDir, "logs")); err != nil {
							b.Fatal(err)
						}
						opts.Sink = event.Sinks{output.NewConsole(io.Discard, output.FormatSimple, false), logs}
					}
					res, err := Run(ctx, ctx, plan, opts)
					if err != nil {
						b.Fatal(err)
					}
					if logs != nil {
						if err := logs.Close(); err != nil {
							b.Fatal(err)
						}
					}
					if res.Failed() {
						b.Fatalf("run failed: %+v", res.Jobs[0])
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/job")
			})
		}
	}
}
