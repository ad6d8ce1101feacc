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
	t := &Trace{DisplayTimeUnit: "ms", OtherData: map[string]any{
		"run": r.ID, "workflow": r.Workflow, "result": r.Result,
		"started": r.Started.UTC().Format(time.RFC3339Nano),
	}}
	add := func(e TraceEvent) { t.TraceEvents = append(t.TraceEvents, e) }
	complete := func(tid int, cat, name string, from, to time.Duration, args map[string]any) {
		d := max(us(to)-us(from), 0)
		add(TraceEvent{Name: name, Cat: cat, Ph: "X", Ts: us(from), Dur: &d, Pid: 1, Tid: tid, Args: args})
	}
	add(TraceEvent{Name: "process_name", Ph: "M", Pid: 1, Args: map[string]any{"name": "nixflow " + r.Workflow + " " + r.ID}})
	runArgs := map[string]any{"result": r.Result}
	if r.Domain != "" {
		runArgs["domain"] = r.Domain
	}
	if r.Error != "" {
		runArgs["error"] = r.Error
	}
	add(TraceEvent{Name: "thread_name", Ph: "M", Pid: 1, Tid: 0, Args: map[string]any{"name": "run"}})
	complete(0, "run", r.Workflow, 0, r.Duration, runArgs)
	flow := 0
	tids := map[string]int{}
	for i, j := range r.Jobs {
		tids[j.Name] = i + 1
	}
	for i, j := range r.Jobs {
		tid := i + 1
		add(TraceEvent{Name: "thread_name", Ph: "M", Pid: 1, Tid: tid, Args: map[string]any{"name": j.Name}})
		add(TraceEvent{Name: "thread_sort_index", Ph: "M", Pid: 1, Tid: tid, Args: map[string]any{"sort_index": tid}})
		if j.Start > j.Ready {
			complete(tid, "queued", "queued", j.Ready, j.Start, nil)
		}
		args := map[string]any{"result": j.Result, "executor": j.Executor}
		for k, v := range map[string]string{"location": j.Location, "reason": j.Reason, "domain": j.Domain, "family": j.Family} {
			if v != "" {
				args[k] = v
			}
		}
		if j.Critical {
			args["critical"] = true
		}
		if len(j.Tail) > 0 {
			args["tail"] = j.Tail
		}
		complete(tid, "job", j.Name, j.Start, j.End, args)
		if !j.Ran {
			continue
		}
		for _, n := range j.Needs {
			d := r.Jobs[max(tids[n]-1, 0)]
			if tids[n] == 0 || !d.Ran || d.End <= d.Start {
				continue
			}
			flow++
			// The start lies inside the needed job's event, the end at
			// the start of this one's.
			add(TraceEvent{Name: "needs", Cat: "needs", Ph: "s", Ts: us(d.End) - 1, Pid: 1, Tid: tids[n], ID: flow})
			add(TraceEvent{Name: "needs", Cat: "needs", Ph: "f", Bp: "e", Ts: us(j.Start), Pid: 1, Tid: tid, ID: flow})
		}
		firstStep := j.End
		for _, s := range j.Steps {
			if len(s.Attempts) > 0 {
				firstStep = min(firstStep, s.Attempts[0].Start)
			}
		}
		if firstStep > j.Setup {
			complete(tid, "setup", "setup", j.Setup, firstStep, nil)
		}
		for _, s := range j.Steps {
			for _, a := range s.Attempts {
				name := s.Name
				if len(s.Attempts) > 1 {
					name += " #" + strconv.Itoa(a.N)
				}
				sargs := map[string]any{"result": a.Result, "attempt": a.N}
				if a == s.Attempts[len(s.Attempts)-1] {
					if s.Reason != "" {
						sargs["reason"] = s.Reason
					}
					if s.ExitCode != nil {
						sargs["exitCode"] = *s.ExitCode
					}
				}
				complete(tid, "step", name, a.Start, a.End, sargs)
				if a.WaitEnd > a.End {
					complete(tid, "retry-wait", "retry wait", a.End, a.WaitEnd, nil)
				}
			}
		}
	}
	return t
}

// WriteTrace writes the model as Chrome trace event JSON.
func WriteTrace(w io.Writer, r *Run) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(BuildTrace(r))
}
