package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/timing"
)

// A scenario writes a run directory as a run of nixflow leaves it
// (plan.json, events.jsonl, result.json) for a run that never happened,
// with times chosen by the test, so that the model is exactly known.
type scenario struct {
	id     string
	t0     time.Time
	plan   planFile
	events []event.Event
	res    *actions.Result
	// noResult leaves result.json out (a run that crashed); noEvents
	// leaves events.jsonl out (a run recorded before events were kept).
	noResult, noEvents bool
}

type stepSpec struct {
	name string
	// attempts holds each attempt's start and end, in ms from the start.
	attempts [][2]int
	status   event.Status
	reason   string
	exit     int
	tail     []string
	allowed  bool
	// open leaves the last attempt without an end (a crash mid-step).
	open bool
}

var local = planExecutor{Type: "local"}

func newScenario(id, workflow string) *scenario {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &scenario{id: id, t0: t0, plan: planFile{Name: workflow},
		res: &actions.Result{RunID: id, Name: workflow, Started: t0}}
}

func (s *scenario) at(ms int) time.Time { return s.t0.Add(time.Duration(ms) * time.Millisecond) }

func (s *scenario) emit(ms int, ev event.Event) {
	ev.Time, ev.Run = s.at(ms), s.id
	s.events = append(s.events, ev)
}

// job declares a job of the plan.
func (s *scenario) job(name string, x planExecutor, level int, needs []string, steps ...string) {
	pj := planJob{Name: name, Executor: x, Needs: needs, Level: level}
	for _, st := range steps {
		pj.Steps = append(pj.Steps, planStep{Name: st})
	}
	s.plan.Jobs = append(s.plan.Jobs, pj)
	for len(s.plan.Levels) <= level {
		s.plan.Levels = append(s.plan.Levels, nil)
	}
	s.plan.Levels[level] = append(s.plan.Levels[level], name)
}

// ran records a job that started at start (its turn), began setting up
// at setup, ran its steps, and ended at end (-1: never ended).
func (s *scenario) ran(name string, start, setup, end int, status event.Status, reason string, location string, steps ...stepSpec) {
	jr := &actions.JobResult{Job: name, Status: status, Reason: reason, Started: s.at(start),
		Duration: timing.Duration(time.Duration(end-start) * time.Millisecond)}
	if status == event.StatusFailure {
		jr.Domain = actions.DomainStep
	}
	s.emit(setup, event.Event{Job: name, Event: event.JobStart, Message: "local", Where: location})
	last := setup
	for _, st := range steps {
		sr := &actions.StepResult{Step: st.name, Status: st.status, Reason: st.reason, Attempts: len(st.attempts),
			ExitCode: st.exit, Allowed: st.allowed}
		if st.status == event.StatusFailure {
			sr.Tail = st.tail
		}
		max := len(st.attempts)
		for i, a := range st.attempts {
			s.emit(a[0], event.Event{Job: name, Step: st.name, Event: event.StepStart, Attempt: i + 1, Attempts: max})
			last = a[1]
			code := st.exit
			switch {
			case i < len(st.attempts)-1:
				code = 1
				s.emit(a[1], event.Event{Job: name, Step: st.name, Event: event.StepRetry, Attempt: i + 2, Attempts: max,
					ExitCode: &code, Message: fmt.Sprintf("attempt %d/%d failed: failed with exit status 1; retrying in 1s", i+1, max)})
			case !st.open:
				s.emit(a[1], event.Event{Job: name, Step: st.name, Event: event.StepEnd, Attempt: i + 1, Attempts: max,
					ExitCode: &code, Result: st.status, Reason: st.reason, Allowed: st.allowed,
					Duration: timing.Duration(time.Duration(a[1]-a[0]) * time.Millisecond)})
			}
		}
		if len(st.attempts) == 0 {
			s.emit(last, event.Event{Job: name, Step: st.name, Event: event.StepEnd, Result: st.status, Reason: st.reason})
		}
		jr.Steps = append(jr.Steps, sr)
	}
	if end >= 0 {
		s.emit(end, event.Event{Job: name, Event: event.JobEnd, Result: status, Reason: reason,
			Duration: timing.Duration(time.Duration(end-start) * time.Millisecond)})
	}
	s.res.Jobs = append(s.res.Jobs, jr)
}

// notRun records a job that was skipped or cancelled at ms, before it
// started.
func (s *scenario) notRun(name string, ms int, status event.Status, reason string) {
	s.emit(ms, event.Event{Job: name, Event: event.JobEnd, Result: status, Reason: reason})
	s.res.Jobs = append(s.res.Jobs, &actions.JobResult{Job: name, Status: status, Reason: reason, Started: s.at(ms)})
}

// end records the run's end.
func (s *scenario) end(ms int, cancelled bool) {
	s.res.Duration = timing.Duration(time.Duration(ms) * time.Millisecond)
	s.res.Cancelled = cancelled
	s.emit(ms, event.Event{Event: event.RunEnd, Duration: timing.Duration(time.Duration(ms) * time.Millisecond)})
}

// write writes the run directory under dir and returns its path.
func (s *scenario) write(t testing.TB, dir string) string {
	t.Helper()
	run := filepath.Join(dir, s.id)
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(name string, v any) {
		data, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(run, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("plan.json", s.plan)
	if !s.noResult {
		// In plan order, as the engine writes it.
		byName := map[string]*actions.JobResult{}
		for _, j := range s.res.Jobs {
			byName[j.Job] = j
		}
		s.res.Jobs = s.res.Jobs[:0]
		for _, pj := range s.plan.Jobs {
			if j := byName[pj.Name]; j != nil {
				s.res.Jobs = append(s.res.Jobs, j)
			}
		}
		put("result.json", s.res)
	}
	if !s.noEvents {
		evs := append([]event.Event{{Time: s.t0, Run: s.id, Event: event.RunStart, Message: s.plan.Name}}, s.events...)
		sort.SliceStable(evs, func(a, b int) bool { return evs[a].Time.Before(evs[b].Time) })
		f, err := os.Create(filepath.Join(run, actions.EventsFileName))
		if err != nil {
			t.Fatal(err)
		}
		enc := json.NewEncoder(f)
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return run
}

// scenarios are the runs the golden tests cover.
var scenarios = map[string]func() *scenario{
	// A pipeline with most of what a report shows: a matrix family, a
	// retried step, jobs queued for a slot, executors that say where they
	// ran, a failure with its last lines, an allowed failure, a skip, and
	// an always() job.
	"pipeline": func() *scenario {
		s := newScenario("20260102-030405.000-aaaaaa", "shop")
		oci := planExecutor{Type: "oci", Name: "builders"}
		ssh := planExecutor{Type: "ssh"}
		s.job("lint", local, 0, nil, "fmt", "vet")
		s.job("version", local, 0, nil, "describe")
		s.job("build", oci, 1, []string{"lint", "version"}, "compile")
		s.job("test-node-18", local, 2, []string{"build"}, "unit")
		s.job("test-node-20", local, 2, []string{"build"}, "unit")
		s.job("test-node-22", local, 2, []string{"build"}, "unit")
		s.job("docs", local, 2, []string{"build"}, "render")
		s.job("e2e", ssh, 3, []string{"test-node-18", "test-node-20", "test-node-22"}, "browser", "upload")
		s.job("deploy", ssh, 4, []string{"e2e"}, "push")
		s.job("notify", local, 5, []string{"deploy"}, "post")

		s.ran("lint", 10, 12, 900, event.StatusSuccess, "", "",
			stepSpec{name: "fmt", attempts: [][2]int{{100, 400}}, status: event.StatusSuccess},
			stepSpec{name: "vet", attempts: [][2]int{{410, 880}}, status: event.StatusSuccess})
		s.ran("version", 10, 11, 300, event.StatusSuccess, "", "",
			stepSpec{name: "describe", attempts: [][2]int{{60, 290}}, status: event.StatusSuccess})
		s.ran("build", 900, 901, 2600, event.StatusSuccess, "", "container 3f2a9c1d04e7 (localhost/ci:1)",
			stepSpec{name: "compile", attempts: [][2]int{{1300, 2500}}, status: event.StatusSuccess})
		// At most two jobs at once: test-node-22 and docs wait for a slot.
		s.ran("test-node-18", 2600, 2601, 3400, event.StatusSuccess, "", "",
			stepSpec{name: "unit", attempts: [][2]int{{2650, 3390}}, status: event.StatusSuccess})
		s.ran("test-node-20", 2600, 2602, 4700, event.StatusSuccess, "", "",
			stepSpec{name: "unit", attempts: [][2]int{{2650, 3000}, {4000, 4690}}, status: event.StatusSuccess})
		s.ran("test-node-22", 3400, 3401, 4200, event.StatusSuccess, "", "",
			stepSpec{name: "unit", attempts: [][2]int{{3450, 4190}}, status: event.StatusSuccess})
		s.ran("docs", 4200, 4201, 4600, event.StatusFailure, "step \"render\" failed with exit status 2", "",
			stepSpec{name: "render", attempts: [][2]int{{4250, 4590}}, status: event.StatusFailure, exit: 2,
				reason: "failed with exit status 2", tail: []string{"render: docs/api.md: broken link"}})
		s.res.Jobs[len(s.res.Jobs)-1].Allowed = true
		s.ran("e2e", 4700, 4701, 6200, event.StatusFailure, "step \"browser\" failed with exit status 1", "ci@build-host-2:22",
			stepSpec{name: "browser", attempts: [][2]int{{5000, 6100}}, status: event.StatusFailure, exit: 1,
				reason: "failed with exit status 1", tail: []string{"checkout page: timeout after 30s", "1 of 24 scenarios failed"}},
			stepSpec{name: "upload", status: event.StatusSkipped, reason: "an earlier step failed"})
		s.notRun("deploy", 6200, event.StatusSkipped, "needed job \"e2e\" failed")
		s.ran("notify", 6200, 6201, 6400, event.StatusSuccess, "", "",
			stepSpec{name: "post", attempts: [][2]int{{6250, 6390}}, status: event.StatusSuccess})
		s.end(6450, false)
		return s
	},
	// Ctrl-C during a step: the step and the job are cancelled, the job
	// after it never starts, a cleanup job still runs.
	"interrupted": func() *scenario {
		s := newScenario("20260102-030405.000-bbbbbb", "interrupt")
		s.job("long", local, 0, nil, "s")
		s.job("after", local, 1, []string{"long"}, "s")
		s.job("cleanup", local, 2, []string{"after"}, "s")
		s.ran("long", 5, 6, 1500, event.StatusCancelled, "run cancelled", "",
			stepSpec{name: "s", attempts: [][2]int{{50, 1490}}, status: event.StatusCancelled, reason: "run cancelled", exit: 130})
		s.notRun("after", 1500, event.StatusCancelled, "run cancelled")
		s.ran("cleanup", 1500, 1501, 1700, event.StatusSuccess, "", "",
			stepSpec{name: "s", attempts: [][2]int{{1550, 1690}}, status: event.StatusSuccess})
		s.end(1750, true)
		return s
	},
	// nixflow itself died mid-run: no result, a job with an open step,
	// a job that never started.
	"crashed": func() *scenario {
		s := newScenario("20260102-030405.000-cccccc", "crash")
		s.job("a", local, 0, nil, "s")
		s.job("b", local, 1, []string{"a"}, "s1", "s2")
		s.job("c", local, 2, []string{"b"}, "s")
		s.ran("a", 5, 6, 400, event.StatusSuccess, "", "",
			stepSpec{name: "s", attempts: [][2]int{{50, 390}}, status: event.StatusSuccess})
		s.ran("b", 400, 401, -1, event.StatusSuccess, "", "",
			stepSpec{name: "s1", attempts: [][2]int{{450, 600}}, status: event.StatusSuccess},
			stepSpec{name: "s2", attempts: [][2]int{{610, 0}}, open: true})
		// The last thing the run wrote.
		s.emit(900, event.Event{Job: "b", Step: "s2", Event: event.Warning, Message: "still going"})
		s.noResult = true
		return s
	},
	// A run directory from before runs kept their events: the result
	// alone, steps without times.
	"no-events": func() *scenario {
		s := newScenario("20260102-030405.000-dddddd", "old")
		s.job("a", local, 0, nil, "s")
		s.job("b", local, 1, []string{"a"}, "s")
		s.ran("a", 5, 6, 400, event.StatusSuccess, "", "",
			stepSpec{name: "s", attempts: [][2]int{{50, 390}}, status: event.StatusSuccess})
		s.ran("b", 400, 401, 800, event.StatusFailure, "step \"s\" failed with exit status 1", "",
			stepSpec{name: "s", attempts: [][2]int{{450, 790}}, status: event.StatusFailure, exit: 1,
				reason: "failed with exit status 1", tail: []string{"boom"}})
		s.end(850, false)
		s.noEvents = true
		return s
	},
}

// bigScenario is a run of n jobs: a fan-out of a matrix family between a
// setup job and a final one, jobs ending out of order, at most width at
// once.
func bigScenario(n, width int) *scenario {
	s := newScenario("20260102-030405.000-eeeeee", "big")
	s.job("setup", local, 0, nil, "prepare")
	s.ran("setup", 0, 1, 100, event.StatusSuccess, "", "",
		stepSpec{name: "prepare", attempts: [][2]int{{10, 90}}, status: event.StatusSuccess})
	free := make([]int, width)
	for i := range free {
		free[i] = 100
	}
	var names []string
	end := 100
	for i := 0; i < n-2; i++ {
		name := fmt.Sprintf("shard-n-%04d", i)
		names = append(names, name)
		s.job(name, local, 1, []string{"setup"}, "test")
		lane := i % width
		start := free[lane]
		d := 50 + (i*37)%200
		status := event.StatusSuccess
		if i%97 == 13 {
			status = event.StatusFailure
		}
		s.ran(name, start, start+1, start+d, status, "", "",
			stepSpec{name: "test", attempts: [][2]int{{start + 5, start + d - 2}}, status: status, tail: []string{"shard failed"}})
		free[lane] = start + d
		end = max(end, start+d)
	}
	s.job("report", local, 2, names, "collect")
	s.ran("report", end, end+1, end+100, event.StatusSuccess, "", "",
		stepSpec{name: "collect", attempts: [][2]int{{end + 10, end + 90}}, status: event.StatusSuccess})
	s.end(end+120, false)
	return s
}
