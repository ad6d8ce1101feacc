package oci

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/local"
	"github.com/nixflow/nixflow/internal/ocitest"
)

// BenchmarkStep measures running one trivial step (bash -c true) in a
// prepared workspace: the per-step cost of an exec into a container
// (the step's exec, which also kills what the step left), against the
// local executor's fork and exec. Preparing the workspace is not timed.
//
//	go test -run '^$' -bench Step -benchtime 20x ./executors/oci/
func BenchmarkStep(b *testing.B) {
	b.Run("local", func(b *testing.B) {
		x, err := local.New(executors.Params{Environ: os.Environ()})
		if err != nil {
			b.Fatal(err)
		}
		benchSteps(b, x)
	})
	for _, rt := range runtimes {
		b.Run(rt, func(b *testing.B) {
			c, ref := benchRuntime(b, rt)
			x, err := New(executors.Params{Config: &compiler.OCIExecutor{Image: ref, Runtime: c.name}, RunID: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			benchSteps(b, x)
		})
	}
}

func benchRuntime(b *testing.B, name string) (*cli, string) {
	b.Helper()
	c, err := probe(context.Background(), name, nil)
	if err != nil {
		b.Skipf("%s: %v", name, err)
	}
	ref, err := ocitest.Image(name)
	if err != nil {
		b.Fatal(err)
	}
	return c, ref
}

func benchSteps(b *testing.B, x executors.Executor) {
	ctx := context.Background()
	ws, err := x.Prepare(ctx, executors.JobSpec{RunID: "bench", Job: "bench", RunDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ws.Teardown(ctx, false)
		x.Close(ctx)
	}()
	cmd := executors.Command{
		Argv:   []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "true"},
		Env:    []string{"LC_ALL=C"},
		Stdout: io.Discard, Stderr: io.Discard,
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := ws.Run(ctx, cmd)
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("Run: %+v, %v", res, err)
		}
	}
}
