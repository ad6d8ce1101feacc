package output

import (
	"fmt"

	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/timing"
)

// The text formats (structured and simple) word events alike; they
// differ in what starts a line and in decorations: the structured format
// has times, colours, marks and durations, the simple one none of them,
// so that its output is stable.

const (
	ansiReset = "\x1b[0m"
	ansiDim   = "\x1b[2m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiYel   = "\x1b[33m"
)

// painter colours text, or leaves it as it is.
type painter bool

func (p painter) paint(code, s string) string {
	if !p || code == "" {
		return s
	}
	return code + s + ansiReset
}

// textLine is what a text format writes of an event.
type textLine int

const (
	lineNone    textLine = iota // nothing
	lineJob                     // msg after the job's prefix
	lineWarning                 // a warning about the run, no prefix
)

// describe words e for a text format: what follows the line's prefix,
// and which kind of line it is. decorate says whether the format has
// colours, marks and durations (p paints only if colours are on).
func describe(e *event.Event, decorate bool, p painter) (textLine, string) {
	switch e.Event {
	case event.Output:
		if e.Stream == "stderr" && decorate {
			return lineJob, p.paint(ansiYel, e.Message)
		}
		return lineJob, e.Message
	case event.JobStart:
		return lineJob, "job started (" + e.Message + ")"
	case event.StepStart:
		if e.Attempts > 1 {
			return lineJob, fmt.Sprintf("step started, attempt %d/%d", e.Attempt, e.Attempts)
		}
		return lineJob, "step started"
	case event.JobEnd:
		return lineJob, result(e, "job", decorate, p)
	case event.StepEnd:
		return lineJob, result(e, "step", decorate, p)
	case event.Progress:
		if e.Message == "" {
			return lineNone, ""
		}
		return lineJob, p.paint(ansiDim, e.Message)
	case event.StepRetry, event.Warning:
		if e.Job == "" {
			return lineWarning, "warning: " + p.paint(ansiYel, e.Message)
		}
		return lineJob, p.paint(ansiYel, e.Message)
	}
	return lineNone, ""
}

// result words the end of a job or step.
func result(e *event.Event, what string, decorate bool, p painter) string {
	var word, mark, color string
	switch {
	case e.Result == event.StatusSuccess:
		word, mark, color = "succeeded", "✓ ", ansiGreen
	case e.Result == event.StatusFailure && e.Allowed:
		word, mark, color = "failed (allowed)", "✗ ", ansiYel
	case e.Result == event.StatusFailure:
		word, mark, color = "failed", "✗ ", ansiRed
	default:
		word, mark, color = string(e.Result), "○ ", ansiDim
	}
	s := what + " " + word
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if !decorate {
		return s
	}
	s = p.paint(color, mark+s)
	if e.Duration > 0 {
		s += p.paint(ansiDim, " ("+timing.Human(e.Duration.Std())+")")
	}
	return s
}

// appendJobStep appends the job and step an event is about: job/step.
func appendJobStep(b []byte, e *event.Event) []byte {
	b = append(b, e.Job...)
	if e.Step != "" {
		b = append(append(b, '/'), e.Step...)
	}
	return b
}
