package actions

import (
	"bytes"
	"github.com/nixflow/nixflow/event"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// blocks records what a line writer passes on, as blocks or as events.
type blocks struct {
	mu     sync.Mutex
	blocks int
	lines  []string
}

func (b *blocks) Emit(events ...event.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range events {
		b.lines = append(b.lines, e.Message)
	}
}

func (b *blocks) EmitOutput(line *event.Event, lines []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.blocks++
	for _, e := range event.Lines(line, lines) {
		b.lines = append(b.lines, e.Message)
	}
}

// TestLineWriterBlocks: lines that need nothing of their own go on as
// blocks, masked; those that do (an announcement, a CR, an over-long
// line, a partial line) take the line by line path, and the order of
// the lines and the step's tail are the same either way.
func TestLineWriterBlocks(t *testing.T) {
	// Cut past maxLine plus the longest secret's length.
	long := strings.Repeat("y", maxLine+100)
	tests := []struct {
		name   string
		writes []string
		want   []string
		blocks int
	}{
		{"block", []string{"a\nb\n"}, []string{"a", "b"}, 1},
		{"secret masked in a block", []string{"x super-secret-value y\nz\n"}, []string{"x *** y", "z"}, 1},
		{"secret added by announcement", []string{"::add-mask::announced-value\nsee announced-value\n", "again announced-value\n"},
			[]string{"::add-mask::***", "see ***", "again ***"}, 1},
		{"crlf", []string{"a\r\nb\n"}, []string{"a", "b"}, 0},
		{"partial line first", []string{"par", "tial\nnext\n"}, []string{"partial", "next"}, 1},
		{"last line without newline", []string{"a\nb"}, []string{"a", "b"}, 1},
		{"over-long line", []string{"a\n" + long + "\nb\n"}, []string{"a", long[:maxLine], long[maxLine:], "b"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &blocks{}
			m := NewMasker()
			m.Add("super-secret-value")
			tl := &tail{}
			w := &lineWriter{sink: b, mask: m, tail: tl, now: time.Now,
				announce: func(v string) { m.Add(v) }}
			for _, s := range tt.writes {
				w.Write([]byte(s))
			}
			w.Close()
			if diff := cmp.Diff(tt.want, b.lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if b.blocks != tt.blocks {
				t.Errorf("%d blocks, want %d", b.blocks, tt.blocks)
			}
			if diff := cmp.Diff(tt.want, tl.get()); diff != "" {
				t.Errorf("tail (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLineWriterBlockTail: the tail of a long block is its last lines,
// empty ones included.
func TestLineWriterBlockTail(t *testing.T) {
	var in strings.Builder
	var want []string
	for i := range 50 {
		line := strings.Repeat("z", i%3)
		in.WriteString(line + "\n")
		if i >= 50-tailLines {
			want = append(want, line)
		}
	}
	tl := &tail{}
	w := &lineWriter{sink: &blocks{}, mask: NewMasker(), tail: tl, now: time.Now}
	w.Write([]byte(in.String()))
	if diff := cmp.Diff(want, tl.get()); diff != "" {
		t.Errorf("tail (-want +got):\n%s", diff)
	}
}
