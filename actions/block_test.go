package actions

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/event"
)

// blocks records what a line writer passes on, as blocks or as events.
type blocks struct {
	mu     sync.Mutex
	blocks int
	events int // passed on one by one
	lines  []string
}

func (b *blocks) Emit(events ...event.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events += len(events)
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

// TestLineWriterJoinsCutLine: a line cut between two writes (as a pipe's
// reads cut a fast step's output) goes on in one block with the lines
// after it, masked as a whole: a secret cut in two, a value announced
// across the cut.
func TestLineWriterJoinsCutLine(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   []string
		blocks int
		events int
	}{
		{"cut line", []string{"a\npar", "tial\nnext\n", "last\n"}, []string{"a", "partial", "next", "last"}, 3, 0},
		{"secret cut", []string{"a\nx super-se", "cret-value y\nz\n"}, []string{"a", "x *** y", "z"}, 2, 0},
		{"announcement cut", []string{"::add-mask::fresh-", "value\nsee fresh-value\n"}, []string{"::add-mask::***", "see ***"}, 1, 1},
		{"cut twice", []string{"o", "n", "e\ntwo\n"}, []string{"one", "two"}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &blocks{}
			m := NewMasker()
			m.Add("super-secret-value")
			w := &lineWriter{sink: b, mask: m, tail: &tail{}, now: time.Now,
				announce: func(v string) { m.Add(v) }}
			for _, s := range tt.writes {
				w.LookAhead([]byte(s))
				w.Write([]byte(s))
			}
			w.Close()
			if diff := cmp.Diff(tt.want, b.lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if b.blocks != tt.blocks || b.events != tt.events {
				t.Errorf("%d blocks and %d events, want %d and %d", b.blocks, b.events, tt.blocks, tt.events)
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
