// Package event is the vocabulary of a run's record: the events the engine
// emits as jobs and steps start and end and as steps print, the results they
// carry, and the sinks that take them.
package event

import (
	"strings"
	"time"

	"github.com/nixflow/nixflow/timing"
)

// Type names a point in a run's life.
type Type string

// The events of a run, in the order they happen.
const (
	RunStart  Type = "run_start"
	JobStart  Type = "job_start"
	StepStart Type = "step_start"
	StepRetry Type = "step_retry"
	StepEnd   Type = "step_end"
	JobEnd    Type = "job_end"
	RunEnd    Type = "run_end"
	// Output is a line of a step's output.
	Output Type = "output"
	// Warning is a message from nixflow about a job, not output.
	Warning Type = "warning"
	// Progress says what nixflow is doing for a job before its steps
	// run (pulling an image, copying the workspace, where the job runs).
	Progress Type = "progress"
)

// Event is one thing that happened during a run. Only the fields that
// apply to its type are set.
type Event struct {
	Time     time.Time `json:"time"`
	Run      string    `json:"run"`
	Job      string    `json:"job,omitempty"`
	Step     string    `json:"step,omitempty"`
	Event    Type      `json:"event"`
	Stream   string    `json:"stream,omitempty"`
	Message  string    `json:"message,omitempty"`
	Result   Status    `json:"result,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	ExitCode *int      `json:"exitCode,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	// Attempts is the maximum number of attempts of a step.
	Attempts int             `json:"attempts,omitempty"`
	Duration timing.Duration `json:"duration,omitempty"`
	// Allowed marks a failure that continueOnError allows.
	Allowed bool `json:"allowed,omitempty"`
	// Where says where a job's steps run as its executor names it (a
	// host, a container, an instance), on the progress event emitted once
	// the job's workspace is prepared; nixflow report shows it.
	Where string `json:"where,omitempty"`
}

// Sink receives a run's events. Emit is called from many goroutines at
// once and must be safe for that; it must not block for long, since step
// output waits for it. Lines of output arrive in batches (one Event per
// line, in order) so that a sink can write them with one system call.
type Sink interface {
	Emit(events ...Event)
}

// BlockSink is a Sink that also takes lines of output as one block of
// bytes, without an Event per line: the path of a step printing a lot.
// The step's line writer hands such blocks to every sink that implements
// it, and events to the others.
type BlockSink interface {
	Sink
	// EmitOutput passes on lines, complete masked lines of output that
	// each end with '\n' and hold no '\r', every one an event like
	// *line (an Output with an empty Message). Neither lines nor
	// line may be kept after the call.
	EmitOutput(line *Event, lines []byte)
}

// EmitOutput passes a block of output lines to s: whole to a BlockSink,
// else as one event per line.
func EmitOutput(s Sink, line *Event, lines []byte) {
	if b, ok := s.(BlockSink); ok {
		b.EmitOutput(line, lines)
		return
	}
	s.Emit(Lines(line, lines)...)
}

// Lines makes one event per line of a block; their messages share
// one string.
func Lines(line *Event, lines []byte) []Event {
	text := string(lines)
	events := make([]Event, 0, strings.Count(text, "\n"))
	for len(text) > 0 {
		i := strings.IndexByte(text, '\n')
		e := *line
		e.Message = text[:i]
		events = append(events, e)
		text = text[i+1:]
	}
	return events
}

// Sinks fans events out to several sinks, in order.
type Sinks []Sink

// Emit implements Sink.
func (s Sinks) Emit(events ...Event) {
	for _, sink := range s {
		sink.Emit(events...)
	}
}

// EmitOutput implements BlockSink.
func (s Sinks) EmitOutput(line *Event, lines []byte) {
	var events []Event
	for _, sink := range s {
		if b, ok := sink.(BlockSink); ok {
			b.EmitOutput(line, lines)
			continue
		}
		if events == nil {
			events = Lines(line, lines)
		}
		sink.Emit(events...)
	}
}

// Status is the result of a job or step.
type Status string

// The results of jobs and steps.
const (
	StatusSuccess   Status = "success"
	StatusFailure   Status = "failure"
	StatusSkipped   Status = "skipped"
	StatusCancelled Status = "cancelled"
)
