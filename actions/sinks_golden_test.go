package actions

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nixflow/nixflow/internal/golden"
)

// goldenEvents is a run as the sinks see it: every kind of event, output
// on both streams given line by line and as a block, a retry, a warning,
// an allowed failure and a skipped job.
func goldenEvents() (events []Event, blocks map[int]string) {
	at := func(ms int) time.Time {
		return time.Date(2026, 11, 30, 6, 1, 2, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
	}
	code0, code1 := 0, 1
	ev := func(ms int, e Event) Event {
		e.Time, e.Run = at(ms), "run-1"
		return e
	}
	events = []Event{
		ev(0, Event{Event: EventRunStart, Message: "golden"}),
		ev(1, Event{Job: "build", Event: EventJobStart, Message: "local"}),
		ev(2, Event{Job: "build", Event: EventProgress, Where: "local"}),
		ev(3, Event{Job: "build", Event: EventProgress, Message: "copying the workspace"}),
		ev(4, Event{Job: "build", Step: "compile", Event: EventStepStart, Attempt: 1, Attempts: 2}),
		ev(5, Event{Job: "build", Step: "compile", Event: EventOutput, Stream: "stdout", Message: "line one"}),
		ev(6, Event{Job: "build", Step: "compile", Event: EventOutput, Stream: "stderr", Message: "warning: \"x\" <y> & z"}),
		// index 7: a block of stdout lines, index 8: a block of stderr lines
		ev(7, Event{Job: "build", Step: "compile", Event: EventOutput, Stream: "stdout"}),
		ev(8, Event{Job: "build", Step: "compile", Event: EventOutput, Stream: "stderr"}),
		ev(9, Event{Job: "build", Step: "compile", Event: EventStepRetry, Attempt: 2, Attempts: 2, ExitCode: &code1,
			Message: "attempt 1/2 failed: failed with exit status 1; retrying in 1s"}),
		ev(1500, Event{Job: "build", Step: "compile", Event: EventStepEnd, Result: StatusSuccess, Attempt: 2, Attempts: 2,
			ExitCode: &code0, Duration: 0.25}),
		ev(1501, Event{Job: "build", Event: EventJobEnd, Result: StatusSuccess, Duration: 1.5}),
		ev(1502, Event{Job: "lint", Event: EventJobStart, Message: "local"}),
		ev(1503, Event{Job: "lint", Event: EventWarning, Message: "value too short to mask"}),
		ev(1504, Event{Job: "lint", Step: "vet", Event: EventStepEnd, Result: StatusFailure, Reason: "failed with exit status 2",
			ExitCode: &code1, Allowed: true, Duration: 65}),
		ev(1505, Event{Job: "lint", Event: EventJobEnd, Result: StatusFailure, Reason: "step \"vet\" failed", Allowed: true, Duration: 66}),
		ev(1506, Event{Job: "deploy", Event: EventJobEnd, Result: StatusSkipped, Reason: "needed job \"lint\" failed"}),
		ev(1507, Event{Event: EventWarning, Message: "a warning about the run"}),
		ev(1508, Event{Event: EventRunEnd, Result: StatusFailure, Duration: 1.508}),
	}
	blocks = map[int]string{
		7: "block one\n\nblock \x1b[1mthree\x1b[0m\n",
		8: "err block\n",
	}
	return events, blocks
}

// emitGolden gives s the golden events, the blocks as blocks.
func emitGolden(s Sink) {
	events, blocks := goldenEvents()
	for i := range events {
		if b, ok := blocks[i]; ok {
			emitOutput(s, &events[i], []byte(b))
			continue
		}
		s.Emit(events[i])
	}
}

// TestSinksGolden renders one run with each sink and format and compares
// it with testdata/sinks/; UPDATE_GOLDEN=1 rewrites the files (review the
// diff).
func TestSinksGolden(t *testing.T) {
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
	emitGolden(Sinks{logs, events})
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
	for name, got := range outputs {
		golden.Check(t, filepath.Join("testdata", "sinks", name), got)
	}
}
