package compiler

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchGraph returns the JSON of a workflow of n jobs forming a random DAG
// (a fixed seed, so every run compiles the same graph): job i needs up to 4
// distinct jobs among jobs 0..i-1, and has 2 steps, each with env, retry
// and timeout set.
func benchGraph(tb testing.TB, n int) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	type step struct {
		Name    string            `json:"name"`
		Bash    string            `json:"bash"`
		Env     map[string]string `json:"env"`
		Retry   map[string]any    `json:"retry"`
		Timeout string            `json:"timeout"`
	}
	type job struct {
		Executor map[string]any `json:"executor"`
		Needs    []string       `json:"needs,omitempty"`
		Steps    []step         `json:"steps"`
	}
	name := func(i int) string { return fmt.Sprintf("job-%05d", i) }
	jobs := make(map[string]job, n)
	for i := range n {
		var needs []string
		if i > 0 {
			seen := map[int]bool{}
			for range rng.IntN(5) {
				d := rng.IntN(i)
				if !seen[d] {
					seen[d] = true
					needs = append(needs, name(d))
				}
			}
		}
		steps := make([]step, 2)
		for s := range steps {
			steps[s] = step{
				Name:    fmt.Sprintf("step-%d", s),
				Bash:    fmt.Sprintf("echo building %s part %d && make -C src/%d all", name(i), s, i),
				Env:     map[string]string{"PART": fmt.Sprint(s), "JOB_INDEX": fmt.Sprint(i)},
				Retry:   map[string]any{"maxAttempts": 3, "backoff": "linear", "minTime": 1, "maxTime": 30},
				Timeout: "10m",
			}
		}
		jobs[name(i)] = job{
			Executor: map[string]any{"type": "local", "copyRepo": false},
			Needs:    needs,
			Steps:    steps,
		}
	}
	data, err := json.Marshal(map[string]any{
		"version": 1,
		"name":    fmt.Sprintf("bench-%d", n),
		"env":     map[string]string{"CI": "true"},
		"retry":   map[string]any{"maxAttempts": 2},
		"timeout": "1h",
		"jobs":    jobs,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// BenchmarkCompile compiles generated graphs of 1,000 and 10,000 jobs. The
// product target is a 10,000-job graph compiled in under a second; this
// benchmark only reports (ns/op, ns/job), it asserts no time.
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) {
			data := benchGraph(b, n)
			if _, err := Compile("bench.json", data); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile("bench.json", data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/job")
		})
	}
}
