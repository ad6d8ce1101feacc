package report

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
	localexec "github.com/nixflow/nixflow/executors/local"
)

// TestRealRun reports a run of the real engine on the local executor: a
// step that fails once and is retried, a job that waits for a slot, a
// failure with its last lines, a skip. The model matches what happened
// and the trace passes the format's checks.
func TestRealRun(t *testing.T) {
	const workflow = `{"version": 1, "name": "real",
	 "jobs": {
	   "a": {"executor": {"type": "local", "copyRepo": false},
	         "retry": {"maxAttempts": 2, "backoff": "constant", "minTime": 0.2},
	         "steps": [{"name": "flaky", "bash": "if [ -e once ]; then exit 0; fi; touch once; exit 1"}]},
	   "b": {"executor": {"type": "local", "copyRepo": false}, "steps": [{"name": "s", "bash": "sleep 0.1"}]},
	   "c": {"executor": {"type": "local", "copyRepo": false}, "steps": [{"name": "s", "bash": "echo last words; exit 5"}]},
	   "d": {"executor": {"type": "local", "copyRepo": false}, "needs": ["a", "c"], "steps": [{"name": "s", "bash": "true"}]}}}`
	plan, err := compiler.Compile("real.json", []byte(workflow))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	reg := executors.NewRegistry()
	reg.Register("local", localexec.New)
	res, err := actions.Run(context.Background(), context.Background(), plan, actions.Options{
		RunID: "real-run", RunDir: dir, RepoDir: t.TempDir(), Registry: reg, MaxParallel: 2,
		InterruptGrace: time.Second, TerminateGrace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}

	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	jobs := map[string]*Job{}
	for _, j := range r.Jobs {
		jobs[j.Name] = j
	}
	if r.Result != Failure || r.ID != "real-run" || r.Duration != res.Duration.Std() {
		t.Errorf("run: %q %q %v", r.Result, r.ID, r.Duration)
	}
	a := jobs["a"].Steps[0]
	if len(a.Attempts) != 2 || a.Attempts[0].Result != Failure || a.Result != Success ||
		a.Attempts[0].WaitEnd-a.Attempts[0].End < 190*time.Millisecond {
		t.Errorf("a/flaky: %q, attempts %+v %+v", a.Result, a.Attempts[0], a.Attempts[1])
	}
	if c := jobs["c"]; c.Result != Failure || c.TailStep != "s" || len(c.Tail) != 1 || c.Tail[0] != "last words" ||
		*c.Steps[0].ExitCode != 5 {
		t.Errorf("c: %q, tail of %q: %q", c.Result, c.TailStep, c.Tail)
	}
	if d := jobs["d"]; d.Result != Skipped || d.Ran {
		t.Errorf("d: %q ran %v", d.Result, d.Ran)
	}
	// Three jobs could start at once, two slots: one of them started only
	// when another had ended, and was queued until then.
	waited := 0
	for _, n := range []string{"a", "b", "c"} {
		j := jobs[n]
		for _, k := range []string{"a", "b", "c"} {
			if k != n && jobs[k].End <= j.Start {
				waited++
				if j.Ready != 0 {
					t.Errorf("%s was ready at %v, not at the start", n, j.Ready)
				}
				break
			}
		}
		if !j.Ran || j.Setup < j.Start || j.End < j.Steps[0].Attempts[len(j.Steps[0].Attempts)-1].End {
			t.Errorf("%s: times out of order: start %v setup %v end %v", n, j.Start, j.Setup, j.End)
		}
	}
	if waited != 1 || r.Lanes != 2 {
		t.Errorf("%d jobs waited for a slot, %d lanes; want 1 and 2", waited, r.Lanes)
	}
	var trace bytes.Buffer
	if err := WriteTrace(&trace, r); err != nil {
		t.Fatal(err)
	}
	validateTrace(t, trace.Bytes(), r)
}
