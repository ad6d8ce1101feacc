package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/internal/golden"
)

// TestGolden builds the model and the trace of each scenario's run
// directory and compares them with testdata/<scenario>.{model,trace}.json.
// UPDATE_GOLDEN=1 rewrites them (review the diff).
func TestGolden(t *testing.T) {
	for name, mk := range scenarios {
		t.Run(name, func(t *testing.T) {
			r, err := Load(mk().write(t, t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			model, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			var trace bytes.Buffer
			if err := WriteTrace(&trace, r); err != nil {
				t.Fatal(err)
			}
			validateTrace(t, trace.Bytes(), r)
			for file, got := range map[string][]byte{name + ".model.json": append(model, '\n'), name + ".trace.json": trace.Bytes()} {
				golden.Check(t, filepath.Join("testdata", file), got)
			}
		})
	}
}

// TestModel checks the facts the report is for, scenario by scenario, in
// words rather than in a golden file.
func TestModel(t *testing.T) {
	load := func(t *testing.T, name string) (*Run, map[string]*Job) {
		r, err := Load(scenarios[name]().write(t, t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		jobs := map[string]*Job{}
		for _, j := range r.Jobs {
			jobs[j.Name] = j
		}
		return r, jobs
	}
	t.Run("pipeline", func(t *testing.T) {
		r, jobs := load(t, "pipeline")
		if r.Result != Failure || r.Domain != "step" {
			t.Errorf("run result %q domain %q, want failure step", r.Result, r.Domain)
		}
		if diff := cmp.Diff([]string{"lint", "build", "test-node-20", "e2e", "deploy", "notify"}, r.CriticalPath); diff != "" {
			t.Errorf("critical path (-want +got):\n%s", diff)
		}
		if got := jobs["test-node-22"].Start - jobs["test-node-22"].Ready; got.Milliseconds() != 800 {
			t.Errorf("test-node-22 queued %v, want 800ms", got)
		}
		if j := jobs["build"]; j.Location != "container 3f2a9c1d04e7 (localhost/ci:1)" || j.Executor != "oci:builders" {
			t.Errorf("build ran on %q at %q", j.Executor, j.Location)
		}
		a := jobs["test-node-20"].Steps[0].Attempts
		if len(a) != 2 || a[0].Result != Failure || a[0].WaitEnd != a[1].Start || a[1].Result != Success {
			t.Errorf("test-node-20 attempts: %+v %+v", a[0], a[1])
		}
		if j := jobs["docs"]; j.Result != Allowed || j.TailStep != "render" {
			t.Errorf("docs: %q, tail of %q", j.Result, j.TailStep)
		}
		if j := jobs["deploy"]; j.Result != Skipped || j.Ran {
			t.Errorf("deploy: %q, ran %v", j.Result, j.Ran)
		}
		if j := jobs["e2e"]; j.Steps[1].Result != Skipped || len(j.Tail) != 2 {
			t.Errorf("e2e: upload %q, tail %q", j.Steps[1].Result, j.Tail)
		}
		if len(r.Families) != 1 || r.Families[0].Name != "test-node-*" || len(r.Families[0].Jobs) != 3 {
			t.Errorf("families: %+v", r.Families)
		}
		if r.Lanes != 2 {
			t.Errorf("lanes %d, want 2", r.Lanes)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		r, jobs := load(t, "interrupted")
		if r.Result != "interrupted" {
			t.Errorf("run result %q", r.Result)
		}
		if j := jobs["long"]; j.Result != Cancelled || !j.Ran || j.End.Milliseconds() != 1500 {
			t.Errorf("long: %q ran %v end %v", j.Result, j.Ran, j.End)
		}
		if j := jobs["after"]; j.Result != Cancelled || j.Ran {
			t.Errorf("after: %q ran %v", j.Result, j.Ran)
		}
	})
	t.Run("crashed", func(t *testing.T) {
		r, jobs := load(t, "crashed")
		if r.Result != Incomplete || r.Duration.Milliseconds() != 900 {
			t.Errorf("run result %q duration %v", r.Result, r.Duration)
		}
		b := jobs["b"]
		if b.Result != Incomplete || b.End.Milliseconds() != 900 || b.Steps[1].Result != Incomplete || b.Steps[1].Attempts[0].End != b.End {
			t.Errorf("b: %q end %v, s2 %q", b.Result, b.End, b.Steps[1].Result)
		}
		if c := jobs["c"]; c.Result != NotRun || c.Ran {
			t.Errorf("c: %q ran %v", c.Result, c.Ran)
		}
	})
	t.Run("no-events", func(t *testing.T) {
		_, jobs := load(t, "no-events")
		if b := jobs["b"]; b.Result != Failure || b.End.Milliseconds() != 800 || len(b.Tail) != 1 {
			t.Errorf("b: %q end %v tail %q", b.Result, b.End, b.Tail)
		}
	})
}

// validateTrace checks a trace against the trace event format as Perfetto
// and chrome://tracing read it: a JSON object with a traceEvents array of
// events with a name, a known phase, numeric pid, tid and ts, complete
// events with a duration, metadata with its argument; on each track,
// complete events either nest or follow each other; every job has a
// track named after it.
func validateTrace(t *testing.T, data []byte, r *Run) {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("trace is not a JSON object: %v", err)
	}
	var events []map[string]any
	if err := json.Unmarshal(doc["traceEvents"], &events); err != nil {
		t.Fatalf("traceEvents: %v", err)
	}
	num := func(e map[string]any, k string) float64 {
		v, ok := e[k].(float64)
		if !ok {
			t.Fatalf("event %v: %s is not a number", e, k)
		}
		return v
	}
	type span struct{ from, to float64 }
	tracks := map[float64][]span{}
	names := map[string]bool{}
	flows := map[float64][]map[string]any{}
	for _, e := range events {
		if n, _ := e["name"].(string); n == "" {
			t.Fatalf("event without a name: %v", e)
		}
		num(e, "pid")
		num(e, "tid")
		if ts := num(e, "ts"); ts < 0 {
			t.Errorf("event %v: negative ts", e)
		}
		switch e["ph"] {
		case "X":
			dur := num(e, "dur")
			if dur < 0 {
				t.Errorf("event %v: negative dur", e)
			}
			tracks[num(e, "tid")] = append(tracks[num(e, "tid")], span{num(e, "ts"), num(e, "ts") + dur})
		case "M":
			args, ok := e["args"].(map[string]any)
			switch {
			case !ok:
				t.Errorf("metadata without args: %v", e)
			case e["name"] == "thread_name":
				names[args["name"].(string)] = true
			case e["name"] == "process_name":
			case e["name"] == "thread_sort_index":
				num(args, "sort_index")
			default:
				t.Errorf("unknown metadata %v", e["name"])
			}
		case "s", "f":
			if num(e, "id") <= 0 {
				t.Errorf("flow without an id: %v", e)
			}
			if e["ph"] == "f" && e["bp"] != "e" {
				t.Errorf("flow end not bound to its enclosing slice: %v", e)
			}
			flows[num(e, "id")] = append(flows[num(e, "id")], e)
		default:
			t.Errorf("unexpected phase %v", e["ph"])
		}
	}
	for tid, spans := range tracks {
		sort.SliceStable(spans, func(a, b int) bool {
			if spans[a].from != spans[b].from {
				return spans[a].from < spans[b].from
			}
			return spans[a].to > spans[b].to
		})
		var stack []span
		for _, s := range spans {
			for len(stack) > 0 && stack[len(stack)-1].to <= s.from {
				stack = stack[:len(stack)-1]
			}
			if len(stack) > 0 && s.to > stack[len(stack)-1].to {
				t.Errorf("track %v: %v overlaps %v without nesting", tid, s, stack[len(stack)-1])
			}
			stack = append(stack, s)
		}
	}
	for _, j := range r.Jobs {
		if !names[j.Name] {
			t.Errorf("no track for job %q", j.Name)
		}
	}
	// A flow has a start and an end, each inside a complete event of its
	// track, the end not before the start.
	inside := func(e map[string]any) bool {
		for _, s := range tracks[num(e, "tid")] {
			if s.from <= num(e, "ts") && num(e, "ts") <= s.to {
				return true
			}
		}
		return false
	}
	for id, f := range flows {
		if len(f) != 2 || f[0]["ph"] != "s" || f[1]["ph"] != "f" || num(f[0], "ts") > num(f[1], "ts") {
			t.Errorf("flow %v: %v", id, f)
			continue
		}
		for _, e := range f {
			if !inside(e) {
				t.Errorf("flow %v: %v is in no event of its track", id, e)
			}
		}
	}
}

// TestMask checks that every text of the model is masked, and that the
// rendered files then hold no secret, in any escaping.
func TestMask(t *testing.T) {
	const secret = "s3cr3t<&>\"value"
	s := scenarios["pipeline"]()
	s.id = "run-" + secret
	s.plan.Name = "shop " + secret
	for i := range s.events {
		if s.events[i].Job == "build" {
			s.events[i].Where = "host " + secret
		}
	}
	for _, j := range s.res.Jobs {
		j.Reason += " " + secret
		for _, st := range j.Steps {
			st.Reason += secret
			for i := range st.Tail {
				st.Tail[i] += " " + secret
			}
		}
	}
	s.res.Err = "provider: " + secret
	r, err := Load(s.write(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	m := actions.NewMasker()
	m.Add(secret)
	r.Mask(m.Mask)
	var html, trace bytes.Buffer
	if err := WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteTrace(&trace, r); err != nil {
		t.Fatal(err)
	}
	for what, data := range map[string]string{"html": html.String(), "trace": trace.String()} {
		for _, frag := range []string{"s3cr3t", "value"} {
			if strings.Contains(data, frag) {
				t.Errorf("%s holds %q", what, frag)
			}
		}
		if !strings.Contains(data, "***") {
			t.Errorf("%s holds no ***", what)
		}
	}
}

// TestHTML checks the page without a browser: self-contained, every job
// in it, the critical path marked, and its size for a large run.
func TestHTML(t *testing.T) {
	for name, mk := range scenarios {
		t.Run(name, func(t *testing.T) {
			r, err := Load(mk().write(t, t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := WriteHTML(&b, r); err != nil {
				t.Fatal(err)
			}
			page := b.String()
			for _, bad := range []string{"http://", "https://", "<link", "src=", "@import", "ZgotmplZ"} {
				if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
					t.Errorf("page holds %q: not self-contained or badly escaped", bad)
				}
			}
			for _, j := range r.Jobs {
				if !strings.Contains(page, fmt.Sprintf(`id="tl-%d"`, indexOf(r, j.Name))) || !strings.Contains(page, ">"+j.Name+"<") {
					t.Errorf("job %q is not on the page", j.Name)
				}
			}
			if len(r.CriticalPath) > 0 && !strings.Contains(page, `id="critical-path"`) {
				t.Error("no critical path on the page")
			}
		})
	}
	t.Run("1000 jobs", func(t *testing.T) {
		r, page := bigReport(t)
		if r.Lanes > 9 {
			t.Errorf("%d lanes for 8 jobs at once", r.Lanes)
		}
		// The matrix family is one node of the graph, not a thousand.
		if n := strings.Count(string(page), `<a class="node`); n != 3 {
			t.Errorf("graph has %d nodes, want 3", n)
		}
		t.Logf("1000 jobs: %d KiB of HTML", len(page)/1024)
	})
}

func indexOf(r *Run, job string) int {
	for i, j := range r.Jobs {
		if j.Name == job {
			return i
		}
	}
	return -1
}

// BenchmarkReport1000 builds the model of a 1,000-job run from its run
// directory and renders the page and the trace.
func BenchmarkReport1000(b *testing.B) {
	dir := bigScenario(1000, 8).write(b, b.TempDir())
	for b.Loop() {
		r, err := Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		var page, trace bytes.Buffer
		if err := WriteHTML(&page, r); err != nil {
			b.Fatal(err)
		}
		if err := WriteTrace(&trace, r); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(page.Len())/1024, "KiB-html")
		b.ReportMetric(float64(trace.Len())/1024, "KiB-trace")
	}
}

// TestDamagedResult: a result.json without a start (`{}`, as a damaged
// run may leave) takes the run's times from its events, and a report of
// the longest span there is still ends (the ticks' loop once wrapped
// around and filled memory).
func TestDamagedResult(t *testing.T) {
	s := scenarios["pipeline"]()
	s.res = &actions.Result{}
	dir := s.write(t, t.TempDir())
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Started.Equal(s.t0) {
		t.Errorf("run started %v, want %v (its first event)", r.Started, s.t0)
	}
	if err := WriteHTML(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if ts := ticks(time.Duration(math.MaxInt64)); len(ts) == 0 || len(ts) > 200_000 {
		t.Errorf("%d ticks for the longest span", len(ts))
	}
}
