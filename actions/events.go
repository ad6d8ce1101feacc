package actions

import (
	"time"
)

// EventType names a point in a run's life.
type EventType string

// The events of a run, in the order they happen.
const (
	EventRunStart  EventType = "run_start"
	EventJobStart  EventType = "job_start"
	EventStepStart EventType = "step_start"
	EventStepRetry EventType = "step_retry"
	EventStepEnd   EventType = "step_end"
	EventJobEnd    EventType = "job_end"
	EventRunEnd    EventType = "run_end"
	// EventOutput is a line of a step's output.
	EventOutput EventType = "output"
	// EventWarning is a message from nixflow about a job, not output.
	EventWarning EventType = "warning"
	// EventProgress says what nixflow is doing for a job before its steps
	// run (pulling an image, copying the workspace, where the job runs).
	EventProgress EventType = "progress"
)

// Event is one thing that happened during a run. Only the fields that
// apply to its type are set.
type Event struct {
	Time     time.Time `json:"time"`
	Run      string    `json:"run"`
	Job      string    `json:"job,omitempty"`
	Step     string    `json:"step,omitempty"`
	Event    EventType `json:"event"`
	Stream   string    `json:"stream,omitempty"`
	Message  string    `json:"message,omitempty"`
	Result   Status    `json:"result,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	ExitCode *int      `json:"exitCode,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	// Attempts is the maximum number of attempts of a step.
	Attempts int     `json:"attempts,omitempty"`
	Duration float64 `json:"durationSeconds,omitempty"`
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

// Sinks fans events out to several sinks, in order.
type Sinks []Sink

// Emit implements Sink.
func (s Sinks) Emit(events ...Event) {
	for _, sink := range s {
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

// Domain names where a failure came from, so that the summary and the exit
// status can tell a broken step from broken infrastructure.
type Domain string

// The failure domains.
const (
	DomainNone        Domain = ""
	DomainStep        Domain = "step"
	DomainExecutor    Domain = "executor"
	DomainBuild       Domain = "build"
	DomainEnvironment Domain = "environment"
)
