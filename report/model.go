// Package report turns what a run leaves in its run directory (the plan,
// the recorded events, the result) into a picture of the run: a data model
// of jobs, steps, attempts and waits on one time axis, with the critical
// path and where each job ran, rendered as one self-contained HTML page or
// as Chrome trace event JSON for Perfetto and chrome://tracing.
//
// The model is built from files only, so that a report can be made of any
// past run, also of one that failed, was interrupted or crashed: what did
// not end is drawn as such. Every string of the model goes through a mask
// function before it is rendered.
package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/event"
)

// The results a job or step can have in a report: the run's statuses, and
// two for what a run that stopped early left open.
const (
	Success   = "success"
	Failure   = "failure"
	Allowed   = "allowed" // a failure continueOnError allows
	Skipped   = "skipped"
	Cancelled = "cancelled"
	// Incomplete: started, never ended (the run crashed or is running).
	Incomplete = "incomplete"
	// NotRun: never started, and the run has no result for it.
	NotRun = "not-run"
)

// Run is the report's model of one run. Times are offsets from Started.
type Run struct {
	ID       string    `json:"id"`
	Workflow string    `json:"workflow"`
	Started  time.Time `json:"started"`
	// Duration is the run's wall time (up to its last event for a run
	// without a result).
	Duration time.Duration `json:"duration"`
	// Result: success, failure, interrupted, or incomplete (no result:
	// the run crashed or is still running).
	Result string `json:"result"`
	// Domain names where a failure came from (step, executor, build,
	// environment).
	Domain string `json:"domain,omitempty"`
	// Error is a run-level failure (a workflow provider).
	Error string `json:"error,omitempty"`
	// Levels is the depth of the job graph.
	Levels int    `json:"levels"`
	Jobs   []*Job `json:"jobs"`
	// Lanes is how many lanes the packed timeline needs: the most jobs
	// that were in progress at once.
	Lanes int `json:"lanes"`
	// CriticalPath is the chain of jobs that decided the run's length,
	// first job first.
	CriticalPath []string `json:"criticalPath,omitempty"`
	// Families are matrix families: jobs that differ only in the values
	// their names carry.
	Families []*Family `json:"families,omitempty"`
}

// Family is a group of matrix jobs.
type Family struct {
	// Name is the jobs' common name with a * for what varies.
	Name string   `json:"name"`
	Jobs []string `json:"jobs"`
}

// Job is one job of the run.
type Job struct {
	Name   string   `json:"name"`
	Needs  []string `json:"needs,omitempty"`
	Level  int      `json:"level"`
	Family string   `json:"family,omitempty"`
	// Executor is the executor's type, and its name when it has one
	// ("oci:builders").
	Executor string `json:"executor"`
	// Location is where the job ran as the executor named it (a host, a
	// container, an instance); empty when it did not say.
	Location string `json:"location,omitempty"`
	Result   string `json:"result"`
	Reason   string `json:"reason,omitempty"`
	Domain   string `json:"domain,omitempty"`
	// Ready is when every job it needs had ended; Start when it got its
	// turn (Start-Ready is time queued for a slot); Setup when the
	// executor started preparing (deps, workspace, inputs); End when it
	// ended. Ran is false for a job that never got to start.
	Ready time.Duration `json:"ready"`
	Start time.Duration `json:"start"`
	Setup time.Duration `json:"setup"`
	End   time.Duration `json:"end"`
	Ran   bool          `json:"ran"`
	// Attempts is the most attempts a step took.
	Attempts int     `json:"attempts"`
	Steps    []*Step `json:"steps,omitempty"`
	// Tail is the last lines of the job's failed step.
	Tail     []string `json:"tail,omitempty"`
	TailStep string   `json:"tailStep,omitempty"`
	Critical bool     `json:"critical,omitempty"`
	// Lane is the job's lane in the packed timeline.
	Lane int `json:"lane"`
	// timed is set when the events recorded the job's start, and so its
	// setup.
	timed bool
}

// setupEnd is when the job's setup ended: its first step's start, or its
// end. ok is false when there was no setup, or none recorded.
func (j *Job) setupEnd() (end time.Duration, ok bool) {
	if !j.timed {
		return 0, false
	}
	end = j.End
	for _, s := range j.Steps {
		for _, a := range s.Attempts {
			end = min(end, a.Start)
		}
	}
	return end, end > j.Setup
}

// Step is one step of a job.
type Step struct {
	Name     string     `json:"name"`
	Result   string     `json:"result"`
	Reason   string     `json:"reason,omitempty"`
	ExitCode *int       `json:"exitCode,omitempty"`
	Attempts []*Attempt `json:"attempts,omitempty"`
}

// Attempt is one try of a step, and the wait after it when it was retried.
type Attempt struct {
	N      int           `json:"n"`
	Start  time.Duration `json:"start"`
	End    time.Duration `json:"end"`
	Result string        `json:"result"`
	// WaitEnd is when the wait for the next attempt ended (zero: none).
	WaitEnd time.Duration `json:"waitEnd,omitempty"`
}

// planFile is what the report reads of plan.json.
type planFile struct {
	Name   string     `json:"name"`
	Jobs   []planJob  `json:"jobs"`
	Levels [][]string `json:"levels"`
}

type planJob struct {
	Name     string       `json:"name"`
	Executor planExecutor `json:"executor"`
	Needs    []string     `json:"needs,omitempty"`
	Level    int          `json:"level"`
	Steps    []planStep   `json:"steps"`
}

type planExecutor struct {
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
}

type planStep struct {
	Name string `json:"name"`
}

// Load builds the model of the run in dir from its plan.json, its
// events.jsonl and its result.json. Only the plan is required: a run
// without a result is reported as incomplete, one without events with
// what the result says.
func Load(dir string) (*Run, error) {
	var plan planFile
	data, err := os.ReadFile(filepath.Join(dir, "plan.json"))
	if err != nil {
		return nil, fmt.Errorf("read the plan: %w", err)
	}
	if err := json.Unmarshal(data, &plan); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "plan.json"), err)
	}
	res, err := actions.ReadResult(dir)
	if errors.Is(err, fs.ErrNotExist) {
		res = nil
	} else if err != nil {
		return nil, fmt.Errorf("read the result: %w", err)
	}
	events, err := readEvents(filepath.Join(dir, actions.EventsFileName))
	if err != nil {
		return nil, err
	}
	id := filepath.Base(dir)
	if res != nil && res.RunID != "" {
		id = res.RunID
	}
	return build(id, &plan, res, events), nil
}

// readEvents reads a JSON lines events file; a missing file is no events,
// and a torn last line (a crash mid-write) is ignored.
func readEvents(path string) ([]event.Event, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the events: %w", err)
	}
	defer f.Close()
	var events []event.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var ev event.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			events = append(events, ev)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the events: %w", err)
	}
	return events, nil
}

// build assembles the model. res and events may each be missing.
func build(id string, plan *planFile, res *actions.Result, events []event.Event) *Run {
	r := &Run{ID: id, Workflow: plan.Name, Levels: len(plan.Levels)}
	t0, last := origin(res, events)
	r.Started = t0
	at := func(t time.Time) time.Duration { return max(t.Sub(t0), 0) }

	results := map[string]*actions.JobResult{}
	if res != nil {
		r.Duration = res.Duration.Std()
		r.Domain, r.Error = string(res.Domain), res.Err
		for _, j := range res.Jobs {
			results[j.Job] = j
		}
		switch {
		case res.Cancelled:
			r.Result = "interrupted"
		case res.Failed():
			r.Result = Failure
		default:
			r.Result = Success
		}
	} else {
		r.Duration = at(last)
		r.Result = Incomplete
	}

	byJob := map[string][]event.Event{}
	for _, ev := range events {
		if ev.Job != "" {
			byJob[ev.Job] = append(byJob[ev.Job], ev)
		}
	}
	jobs := map[string]*Job{}
	for _, pj := range plan.Jobs {
		j := newJob(pj, results[pj.Name], byJob[pj.Name], at, r.Duration)
		if r.Domain == "" && j.Result == Failure {
			r.Domain = j.Domain
		}
		jobs[j.Name] = j
		r.Jobs = append(r.Jobs, j)
	}
	for _, j := range r.Jobs {
		for _, n := range j.Needs {
			if d := jobs[n]; d != nil && d.End > j.Ready {
				j.Ready = d.End
			}
		}
		j.Ready = min(j.Ready, j.Start)
	}
	r.CriticalPath = criticalPath(r.Jobs, jobs)
	r.Lanes = packLanes(r.Jobs)
	r.Families = families(plan, r.Jobs)
	return r
}

// origin is the run's start (its recorded start, else its first event)
// and the time of its last event.
func origin(res *actions.Result, events []event.Event) (t0, last time.Time) {
	switch {
	case res != nil && !res.Started.IsZero():
		t0 = res.Started
	case len(events) > 0:
		t0 = events[0].Time
	}
	for _, ev := range events {
		if ev.Time.Before(t0) {
			t0 = ev.Time
		}
		if ev.Time.After(last) {
			last = ev.Time
		}
	}
	return t0, last
}

// jobEvents is what a job's events say about it.
type jobEvents struct {
	started, ended   bool
	setup, end, last time.Duration
	result, reason   string
	location         string
}

func readJobEvents(events []event.Event, at func(time.Time) time.Duration) jobEvents {
	var je jobEvents
	for _, ev := range events {
		je.last = at(ev.Time)
		if ev.Where != "" {
			je.location = ev.Where
		}
		switch ev.Event {
		case event.JobStart:
			je.started, je.setup = true, at(ev.Time)
		case event.JobEnd:
			je.ended, je.end = true, at(ev.Time)
			je.result, je.reason = jobResult(ev.Result, ev.Allowed), ev.Reason
		}
	}
	return je
}

// newJob makes a job of the model from its plan, its result (when the
// run has one) and its events.
func newJob(pj planJob, jr *actions.JobResult, events []event.Event, at func(time.Time) time.Duration, runEnd time.Duration) *Job {
	j := &Job{Name: pj.Name, Needs: pj.Needs, Level: pj.Level, Executor: pj.Executor.Type}
	if pj.Executor.Name != "" {
		j.Executor += ":" + pj.Executor.Name
	}
	je := readJobEvents(events, at)
	j.Location, j.Setup, j.Ran, j.timed = je.location, je.setup, je.started, je.started
	steps := stepsOf(pj.Steps, events, at)
	if jr != nil {
		fromResult(j, jr, steps, at)
	} else {
		switch {
		case je.ended:
			j.End, j.Result, j.Reason = je.end, je.result, je.reason
			j.Start = j.End
			if je.started {
				j.Start = min(je.setup, je.end)
			}
		case je.started:
			// Started, never ended: open until the run's last word.
			j.Start, j.End, j.Result = je.setup, max(runEnd, je.last), Incomplete
		default:
			j.Result = NotRun
		}
	}
	if !je.started {
		j.Setup = j.Start
	}
	for _, ps := range pj.Steps {
		s := steps[ps.Name]
		if s.Result == "" {
			s.Result = NotRun
		}
		// An attempt still open when the job ended (or the run stopped).
		for _, a := range s.Attempts {
			if a.End < a.Start {
				a.End = max(j.End, a.Start)
				if a.Result == "" {
					a.Result = Incomplete
				}
				if s.Result == NotRun {
					s.Result = Incomplete
				}
			}
		}
		j.Attempts = max(j.Attempts, len(s.Attempts))
		j.Steps = append(j.Steps, s)
	}
	return j
}

// fromResult takes a job's times and results from the run's result, which
// has the last word on them.
func fromResult(j *Job, jr *actions.JobResult, steps map[string]*Step, at func(time.Time) time.Duration) {
	if !jr.Started.IsZero() {
		j.Start = at(jr.Started)
	}
	j.End = j.Start + jr.Duration.Std()
	j.Result, j.Reason, j.Domain = jobResult(jr.Status, jr.Allowed), jr.Reason, string(jr.Domain)
	for _, sr := range jr.Steps {
		s := steps[sr.Step]
		if s == nil {
			continue
		}
		s.Result, s.Reason = jobResult(sr.Status, sr.Allowed), sr.Reason
		if sr.Attempts > 0 {
			code := sr.ExitCode
			s.ExitCode = &code
			// A run recorded without events still says which jobs ran.
			j.Ran = true
			j.Attempts = max(j.Attempts, sr.Attempts)
		}
		if sr.Status == event.StatusFailure && len(sr.Tail) > 0 {
			j.Tail, j.TailStep = sr.Tail, sr.Step
		}
	}
}

// stepsOf reads the steps' attempts and waits from a job's events.
func stepsOf(plan []planStep, events []event.Event, at func(time.Time) time.Duration) map[string]*Step {
	steps := map[string]*Step{}
	for _, ps := range plan {
		steps[ps.Name] = &Step{Name: ps.Name}
	}
	open := map[string]*Attempt{}
	for _, ev := range events {
		s := steps[ev.Step]
		if s == nil {
			continue
		}
		t := at(ev.Time)
		switch ev.Event {
		case event.StepStart:
			if n := len(s.Attempts); n > 0 && s.Attempts[n-1].WaitEnd == 0 && s.Attempts[n-1].Result == Failure {
				s.Attempts[n-1].WaitEnd = t
			}
			a := &Attempt{N: ev.Attempt, Start: t, End: -1}
			s.Attempts = append(s.Attempts, a)
			open[ev.Step] = a
		case event.StepRetry:
			// Sent when an attempt failed and another follows after a wait.
			if a := open[ev.Step]; a != nil {
				a.End, a.Result = t, Failure
				delete(open, ev.Step)
			}
		case event.StepEnd:
			s.Result, s.Reason = jobResult(ev.Result, ev.Allowed), ev.Reason
			if ev.ExitCode != nil {
				code := *ev.ExitCode
				s.ExitCode = &code
			}
			if a := open[ev.Step]; a != nil {
				a.End, a.Result = t, s.Result
				delete(open, ev.Step)
			} else if n := len(s.Attempts); n > 0 && s.Attempts[n-1].WaitEnd == 0 && s.Attempts[n-1].Result == Failure {
				// Cancelled or timed out during the wait.
				s.Attempts[n-1].WaitEnd = t
			}
		}
	}
	return steps
}

func jobResult(s event.Status, allowed bool) string {
	if s == event.StatusFailure && allowed {
		return Allowed
	}
	if s == "" {
		return NotRun
	}
	return string(s)
}

// criticalPath walks back from the job that ended last through, at each
// job, the job it needed that ended last: the chain that decided when the
// run could end. Skipped jobs are on it where they held a job back: they
// end when their need did. It marks the jobs on it.
func criticalPath(order []*Job, jobs map[string]*Job) []string {
	var end *Job
	for _, j := range order {
		if j.Result != NotRun && (end == nil || j.End > end.End) {
			end = j
		}
	}
	var path []string
	for j := end; j != nil; {
		j.Critical = true
		path = append(path, j.Name)
		var next *Job
		for _, n := range j.Needs {
			if d := jobs[n]; d != nil && d.Result != NotRun && !d.Critical && (next == nil || d.End > next.End) {
				next = d
			}
		}
		j = next
	}
	for i, k := 0, len(path)-1; i < k; i, k = i+1, k-1 {
		path[i], path[k] = path[k], path[i]
	}
	return path
}

// packLanes gives each job the lowest lane free when it started (its
// turn, not when it became ready: time queued is not time running) and
// returns how many lanes there are, the most jobs in progress at once.
func packLanes(jobs []*Job) int {
	order := make([]*Job, len(jobs))
	copy(order, jobs)
	sort.SliceStable(order, func(a, b int) bool { return order[a].Start < order[b].Start })
	var free []time.Duration // when each lane's last job ended
	for _, j := range order {
		end := max(j.End, j.Start+1) // a zero-length job still takes its place
		lane := -1
		for i, f := range free {
			if f <= j.Start {
				lane = i
				break
			}
		}
		if lane < 0 {
			lane = len(free)
			free = append(free, 0)
		}
		free[lane] = end
		j.Lane = lane
	}
	return len(free)
}

// families groups matrix jobs: jobs whose names have the same number of
// dash-separated parts, that need the same jobs, run the same steps on
// the same executor, and share at least the first part of their names.
func families(plan *planFile, jobs []*Job) []*Family {
	groups := map[string][]*Job{}
	var keys []string
	for i, pj := range plan.Jobs {
		parts := strings.Split(pj.Name, "-")
		if len(parts) < 2 {
			continue
		}
		var steps []string
		for _, s := range pj.Steps {
			steps = append(steps, s.Name)
		}
		needs := append([]string(nil), pj.Needs...)
		sort.Strings(needs)
		key := fmt.Sprintf("%s\x00%d\x00%s\x00%s\x00%s", parts[0], len(parts), strings.Join(needs, ","), strings.Join(steps, ","), jobs[i].Executor)
		if _, ok := groups[key]; !ok {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], jobs[i])
	}
	var fams []*Family
	for _, k := range keys {
		g := groups[k]
		if len(g) < 2 {
			continue
		}
		name := familyName(g)
		f := &Family{Name: name}
		for _, j := range g {
			j.Family = name
			f.Jobs = append(f.Jobs, j.Name)
		}
		fams = append(fams, f)
	}
	return fams
}

// familyName is the members' common name parts, with * for the parts
// that differ: e2e-browser-*.
func familyName(g []*Job) string {
	parts := strings.Split(g[0].Name, "-")
	for _, j := range g[1:] {
		for i, p := range strings.Split(j.Name, "-") {
			if parts[i] != p {
				parts[i] = "*"
			}
		}
	}
	// Collapse runs of * into one.
	var out []string
	for _, p := range parts {
		if p == "*" && len(out) > 0 && out[len(out)-1] == "*" {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, "-")
}

// Mask applies mask to every text of the model that could carry a
// secret: names, reasons, locations, the last lines of failed steps.
func (r *Run) Mask(mask func(string) string) {
	r.ID, r.Workflow, r.Error = mask(r.ID), mask(r.Workflow), mask(r.Error)
	for i := range r.CriticalPath {
		r.CriticalPath[i] = mask(r.CriticalPath[i])
	}
	for _, f := range r.Families {
		f.Name = mask(f.Name)
		for i := range f.Jobs {
			f.Jobs[i] = mask(f.Jobs[i])
		}
	}
	for _, j := range r.Jobs {
		j.Name, j.Family, j.Executor, j.Location = mask(j.Name), mask(j.Family), mask(j.Executor), mask(j.Location)
		j.Reason, j.TailStep = mask(j.Reason), mask(j.TailStep)
		for i := range j.Needs {
			j.Needs[i] = mask(j.Needs[i])
		}
		for i := range j.Tail {
			j.Tail[i] = mask(j.Tail[i])
		}
		for _, s := range j.Steps {
			s.Name, s.Reason = mask(s.Name), mask(s.Reason)
		}
	}
}
