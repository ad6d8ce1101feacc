package output

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/internal/golden"
	"github.com/nixflow/nixflow/timing"
)

// goldenEvents is a run as the sinks see it: every kind of event, output
// on both streams given line by line and as a block, a retry, a warning,
// an allowed failure and a skipped job.
func goldenEvents() (events []event.Event, blocks map[int]string) {
	at := func(ms int) time.Time {
		return time.Date(2026, 11, 30, 6, 1, 2, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
	}
	code0, code1 := 0, 1
	ev := func(ms int, e event.Event) event.Event {
		e.Time, e.Run = at(ms), "run-1"
		return e
	}
	events = []event.Event{
		ev(0, event.Event{Event: event.RunStart, Message: "golden"}),
		ev(1, event.Event{Job: "build", Event: event.JobStart, Message: "local"}),
		ev(2, event.Event{Job: "build", Event: event.Progress, Where: "local"}),
		ev(3, event.Event{Job: "build", Event: event.Progress, Message: "copying the workspace"}),
		ev(4, event.Event{Job: "build", Step: "compile", Event: event.StepStart, Attempt: 1, Attempts: 2}),
		ev(5, event.Event{Job: "build", Step: "compile", Event: event.Output, Stream: "stdout", Message: "line one"}),
		ev(6, event.Event{Job: "build", Step: "compile", Event: event.Output, Stream: "stderr", Message: "warning: \"x\" <y> & z"}),
		// index 7: a block of stdout lines, index 8: a block of stderr lines
		ev(7, event.Event{Job: "build", Step: "compile", Event: event.Output, Stream: "stdout"}),
		ev(8, event.Event{Job: "build", Step: "compile", Event: event.Output, Stream: "stderr"}),
		ev(9, event.Event{Job: "build", Step: "compile", Event: event.StepRetry, Attempt: 2, Attempts: 2, ExitCode: &code1,
			Message: "attempt 1/2 failed: failed with exit status 1; retrying in 1s"}),
		ev(1500, event.Event{Job: "build", Step: "compile", Event: event.StepEnd, Result: event.StatusSuccess, Attempt: 2, Attempts: 2,
			ExitCode: &code0, Duration: secs(0.25)}),
		ev(1501, event.Event{Job: "build", Event: event.JobEnd, Result: event.StatusSuccess, Duration: secs(1.5)}),
		ev(1502, event.Event{Job: "lint", Event: event.JobStart, Message: "local"}),
		ev(1503, event.Event{Job: "lint", Event: event.Warning, Message: "value too short to mask"}),
		ev(1504, event.Event{Job: "lint", Step: "vet", Event: event.StepEnd, Result: event.StatusFailure, Reason: "failed with exit status 2",
			ExitCode: &code1, Allowed: true, Duration: secs(65)}),
		ev(1505, event.Event{Job: "lint", Event: event.JobEnd, Result: event.StatusFailure, Reason: "step \"vet\" failed", Allowed: true, Duration: secs(66)}),
		ev(1506, event.Event{Job: "deploy", Event: event.JobEnd, Result: event.StatusSkipped, Reason: "needed job \"lint\" failed"}),
		ev(1507, event.Event{Event: event.Warning, Message: "a warning about the run"}),
		ev(1508, event.Event{Event: event.RunEnd, Result: event.StatusFailure, Duration: secs(1.508)}),
	}
	blocks = map[int]string{
		7: "block one\n\nblock \x1b[1mthree\x1b[0m\n",
		8: "err block\n",
	}
	return events, blocks
}

// secs is a number of seconds as a duration.
func secs(s float64) timing.Duration { return timing.Duration(s * float64(time.Second)) }

// emitGolden gives s the golden events, the blocks as blocks.
func emitGolden(s event.Sink) {
	events, blocks := goldenEvents()
	for i := range events {
		if b, ok := blocks[i]; ok {
			event.EmitOutput(s, &events[i], []byte(b))
			continue
		}
		s.Emit(events[i])
	}
}

// TestFormatsGolden renders one run with each format and sink (the
// console in every format, with and without colour, the job logs and the
// events file) and compares it with testdata/golden/; UPDATE_GOLDEN=1
// rewrites the files (review the diff).
func TestFormatsGolden(t *testing.T) {
	outputs := map[string][]byte{}
	for _, format := range []Format{FormatSimple, FormatStructured, FormatJSON} {
		for _, color := range []bool{false, true} {
			var b bytes.Buffer
			emitGolden(NewConsole(&b, format, color))
			name := "console-" + string(format)
			if color {
				name += "-color"
			}
			outputs[name+".txt"] = b.Bytes()
		}
	}
	dir := t.TempDir()
	logs, err := NewJobLogs(filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	events, err := NewEventsFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	emitGolden(event.Sinks{logs, events})
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}
	if err := events.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"logs/build.log", "logs/lint.log", "logs/deploy.log", "events.jsonl"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		outputs[filepath.Base(f)] = data
	}
	// The CI sections of the same run, from its job logs.
	jobs := []JobOutcome{
		{Job: "build", Status: event.StatusSuccess},
		{Job: "lint", Status: event.StatusFailure, Allowed: true, Reason: "step \"vet\" failed"},
		{Job: "deploy", Status: event.StatusSkipped, Reason: "needed job \"lint\" failed"},
		{Job: "never:ran", Status: event.StatusFailure, Reason: "its executor could not start: 50% of 2, done"},
	}
	for _, g := range []Groups{GroupsGitHub, GroupsGitLab, GroupsBuildkite, GroupsNone} {
		var b bytes.Buffer
		writeGroups(&b, g, dir, jobs, func() time.Time { return time.Unix(1764482462, 0) })
		outputs["groups-"+string(g)+".txt"] = b.Bytes()
	}
	for name, got := range outputs {
		golden.Check(t, filepath.Join("testdata", "golden", name), got)
	}
}
