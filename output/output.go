// Package output writes a run's events where people and programs read
// them: the console in one of its formats (structured, simple, json), a
// log file per job, the events file of a run directory, and the
// collapsible sections of a hosted CI's log.
//
// Each format is one file behind the small format interface; the sinks
// (Console, JobLogs, EventsFile) take care of locking, batching and
// files, and hand the formatting to a format.
package output

import (
	"bytes"
	"time"

	"github.com/nixflow/nixflow/event"
)

// Format is the console's log format.
type Format string

// The console log formats.
const (
	FormatStructured Format = "structured"
	FormatSimple     Format = "simple"
	FormatJSON       Format = "json"
)

// A format writes events as lines of text. Its methods are called with
// the sink's lock held, so a format may keep state (a cached time).
type format interface {
	// appendEvent appends e as the format writes it: a line, or
	// nothing for an event the format leaves out.
	appendEvent(b []byte, e *event.Event) []byte
	// appendHead appends what starts each line of a block of output
	// lines like line (see event.BlockSink). ok false means the format
	// cannot write such a line from a head: the block is then written
	// one event a line, with appendEvent.
	appendHead(b []byte, line *event.Event) (head []byte, ok bool)
	// appendLine appends one line of output: head, as appendHead made
	// it, then line (which ends with its '\n').
	appendLine(b, head, line []byte) []byte
}

// writeChunk is how much formatted output a sink gathers before writing
// it: a block of lines is written in a few system calls, from a buffer of
// bounded size.
const writeChunk = 256 << 10

// flushDelay bounds how long the files of a run (its events, the job
// logs) keep what they were given in memory: they write it in batches,
// not one system call per event, and a run that is killed loses at most
// this much of the end of its record.
const flushDelay = 200 * time.Millisecond

// appendBlock appends the lines of a block of output, each ended by
// '\n', with f, calling write with what it holds whenever that reaches
// writeChunk; it returns what is left to write.
func appendBlock(f format, b, head, lines []byte, write func([]byte)) []byte {
	if len(lines) > 0 && lines[len(lines)-1] != '\n' {
		panic("output: a block of lines that does not end with a newline")
	}
	for rest := lines; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n') + 1
		b = f.appendLine(b, head, rest[:i])
		rest = rest[i:]
		if len(b) >= writeChunk {
			write(b)
			b = b[:0]
		}
	}
	return b
}
