package report

import (
	"encoding/json"
	"io"
	"strconv"
	"time"
)

// TraceEvent is one event of the Chrome trace event format, as Perfetto
// and chrome://tracing read it: complete events ("X") with a start and a
// duration in microseconds, and metadata ("M") naming the tracks.
type TraceEvent struct {
	Name string `json:"name"`
	Cat  string `json:"cat,omitempty"`
	Ph   string `json:"ph"`
	// Ts and Dur are microseconds from the run's start.
	Ts   int64          `json:"ts"`
	Dur  *int64         `json:"dur,omitempty"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
	// ID and Bp tie the two ends of a flow ("s" and "f") together.
	ID int    `json:"id,omitempty"`
	Bp string `json:"bp,omitempty"`
}

// Trace is a trace file: the JSON object form, which carries metadata
// next to the events.
type Trace struct {
	TraceEvents     []TraceEvent   `json:"traceEvents"`
	DisplayTimeUnit string         `json:"displayTimeUnit"`
	OtherData       map[string]any `json:"otherData,omitempty"`
}

func us(d time.Duration) int64 { return d.Microseconds() }

// BuildTrace turns the model into trace events: one track (thread) per
// job, in plan order, holding the job as a complete event with its queued
// time before it, and its setup, step attempts and retry waits nested in
// it. Events on a track never overlap unless one contains the other. A
// flow (an arrow in Perfetto) goes from the end of each job to the start
// of each job that needed it.
func BuildTrace(r *Run) *Trace {
	b := &traceBuilder{Trace: &Trace{DisplayTimeUnit: "ms", OtherData: map[string]any{
		"run": r.ID, "workflow": r.Workflow, "result": r.Result,
		"started": r.Started.UTC().Format(time.RFC3339Nano),
	}}}
	b.add(TraceEvent{Name: "process_name", Ph: "M", Pid: 1, Args: map[string]any{"name": "nixflow " + r.Workflow + " " + r.ID}})
	b.add(TraceEvent{Name: "thread_name", Ph: "M", Pid: 1, Tid: 0, Args: map[string]any{"name": "run"}})
	b.complete(0, "run", r.Workflow, 0, r.Duration, nonEmpty(map[string]any{"result": r.Result, "domain": r.Domain, "error": r.Error}))
	tids := map[string]int{}
	for i, j := range r.Jobs {
		tids[j.Name] = i + 1
	}
	for i, j := range r.Jobs {
		tid := i + 1
		b.job(tid, j)
		if !j.Ran {
			continue
		}
		for _, n := range j.Needs {
			if d := tids[n]; d > 0 {
				b.flow(d, r.Jobs[d-1], tid, j)
			}
		}
		if end, ok := j.setupEnd(); ok {
			b.complete(tid, "setup", "setup", j.Setup, end, nil)
		}
		for _, s := range j.Steps {
			b.step(tid, s)
		}
	}
	return b.Trace
}

type traceBuilder struct {
	*Trace
	flows int
}

func (b *traceBuilder) add(e TraceEvent) { b.TraceEvents = append(b.TraceEvents, e) }

// complete adds an "X" event from from to to.
func (b *traceBuilder) complete(tid int, cat, name string, from, to time.Duration, args map[string]any) {
	d := max(us(to)-us(from), 0)
	b.add(TraceEvent{Name: name, Cat: cat, Ph: "X", Ts: us(from), Dur: &d, Pid: 1, Tid: tid, Args: args})
}

// job adds a job's track, its queued time and the job itself.
func (b *traceBuilder) job(tid int, j *Job) {
	b.add(TraceEvent{Name: "thread_name", Ph: "M", Pid: 1, Tid: tid, Args: map[string]any{"name": j.Name}})
	b.add(TraceEvent{Name: "thread_sort_index", Ph: "M", Pid: 1, Tid: tid, Args: map[string]any{"sort_index": tid}})
	if j.Start > j.Ready {
		b.complete(tid, "queued", "queued", j.Ready, j.Start, nil)
	}
	args := nonEmpty(map[string]any{"result": j.Result, "executor": j.Executor, "location": j.Location,
		"reason": j.Reason, "domain": j.Domain, "family": j.Family})
	if j.Critical {
		args["critical"] = true
	}
	if len(j.Tail) > 0 {
		args["tail"] = j.Tail
	}
	b.complete(tid, "job", j.Name, j.Start, j.End, args)
}

// flow adds an arrow from the end of need (on track from) to the start of
// job (on track to). Its start lies inside the needed job's event, its
// end at the start of the job's.
func (b *traceBuilder) flow(from int, need *Job, to int, job *Job) {
	if !need.Ran || us(need.End)-us(need.Start) < 1 {
		return
	}
	b.flows++
	b.add(TraceEvent{Name: "needs", Cat: "needs", Ph: "s", Ts: us(need.End) - 1, Pid: 1, Tid: from, ID: b.flows})
	b.add(TraceEvent{Name: "needs", Cat: "needs", Ph: "f", Bp: "e", Ts: us(job.Start), Pid: 1, Tid: to, ID: b.flows})
}

// step adds a step's attempts and the waits between them.
func (b *traceBuilder) step(tid int, s *Step) {
	for _, a := range s.Attempts {
		name := s.Name
		if len(s.Attempts) > 1 {
			name += " #" + strconv.Itoa(a.N)
		}
		args := map[string]any{"result": a.Result, "attempt": a.N}
		if a == s.Attempts[len(s.Attempts)-1] {
			if s.Reason != "" {
				args["reason"] = s.Reason
			}
			if s.ExitCode != nil {
				args["exitCode"] = *s.ExitCode
			}
		}
		b.complete(tid, "step", name, a.Start, a.End, args)
		if a.WaitEnd > a.End {
			b.complete(tid, "retry-wait", "retry wait", a.End, a.WaitEnd, nil)
		}
	}
}

// nonEmpty drops the empty strings of args.
func nonEmpty(args map[string]any) map[string]any {
	for k, v := range args {
		if v == "" {
			delete(args, k)
		}
	}
	return args
}

// WriteTrace writes the model as Chrome trace event JSON.
func WriteTrace(w io.Writer, r *Run) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(BuildTrace(r))
}
