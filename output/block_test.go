package output

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/event"
)

// blockLines are lines a block may hold: empty ones, JSON's special
// characters, invalid UTF-8, U+2028, a tab, colours of the step's own.
const blockLines = "plain line\n\n\"quoted\" <html> & \\back\\\n\xff\xfe bad utf-8\nline\u2028sep\ttab\n\x1b[31mred\x1b[0m\n"

// blockTemplates are the events of output lines the sinks are given.
func blockTemplates() []event.Event {
	at := time.Date(2026, 11, 30, 6, 1, 2, 345678900, time.UTC)
	return []event.Event{
		{Time: at, Run: "r1", Job: "build", Step: "compile", Event: event.Output, Stream: "stdout"},
		{Time: at, Run: "r1", Job: "build", Step: "compile", Event: event.Output, Stream: "stderr"},
		{Time: at, Run: "r1", Job: "build", Event: event.Output, Stream: "stdout"},
		{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Run: "r1", Job: "j", Step: "s", Event: event.Output, Stream: "stdout"},
	}
}

// TestConsoleBlock: a block of lines is written byte for byte as the
// same lines given as events, in every format, with and without colour,
// on both streams.
func TestConsoleBlock(t *testing.T) {
	for _, format := range []Format{FormatSimple, FormatStructured, FormatJSON} {
		for _, color := range []bool{false, true} {
			for _, tmpl := range blockTemplates() {
				var byEvents, byBlock bytes.Buffer
				NewConsole(&byEvents, format, color).Emit(event.Lines(&tmpl, []byte(blockLines))...)
				NewConsole(&byBlock, format, color).EmitOutput(&tmpl, []byte(blockLines))
				if byEvents.Len() == 0 && tmpl.Time.Year() <= 9999 {
					t.Fatalf("%s: nothing written", format)
				}
				if diff := cmp.Diff(byEvents.String(), byBlock.String()); diff != "" {
					t.Errorf("%s color=%v %s %s (-events +block):\n%s", format, color, tmpl.Stream, tmpl.Step, diff)
				}
			}
		}
	}
}

// TestJobLogsBlock: the same for the job log files.
func TestJobLogsBlock(t *testing.T) {
	for _, tmpl := range blockTemplates() {
		dir := t.TempDir()
		byEvents, err := NewJobLogs(filepath.Join(dir, "events"))
		if err != nil {
			t.Fatal(err)
		}
		byBlock, err := NewJobLogs(filepath.Join(dir, "block"))
		if err != nil {
			t.Fatal(err)
		}
		byEvents.Emit(event.Lines(&tmpl, []byte(blockLines))...)
		byBlock.EmitOutput(&tmpl, []byte(blockLines))
		for _, l := range []*JobLogs{byEvents, byBlock} {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(filepath.Join(dir, "events", tmpl.Job+".log"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "block", tmpl.Job+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(string(want), "\n") != strings.Count(blockLines, "\n") {
			t.Fatalf("log by events:\n%s", want)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s %s (-events +block):\n%s", tmpl.Stream, tmpl.Step, diff)
		}
	}
}
