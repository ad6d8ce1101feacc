package output

import (
	"github.com/nixflow/nixflow/event"
)

// simple is the simple format: "[job/step] text", without time, mark
// or duration, so that the output of a run is the same every time. On a
// terminal, progress is dim and warnings yellow, as in the structured
// format.
type simple struct {
	p painter
}

func (s simple) appendEvent(b []byte, e *event.Event) []byte {
	if e.Event == event.RunStart {
		return append(append(append(b, "run "...), e.Message...), " started\n"...)
	}
	kind, msg := describe(e, false, s.p)
	switch kind {
	case lineNone:
		return b
	case lineJob:
		b = appendSimpleHead(b, e)
	}
	return append(append(b, msg...), '\n')
}

func appendSimpleHead(b []byte, e *event.Event) []byte {
	return append(appendJobStep(append(b, '['), e), "] "...)
}

func (simple) appendHead(b []byte, line *event.Event) ([]byte, bool) {
	return appendSimpleHead(b, line), true
}

func (simple) appendLine(b, head, line []byte) []byte {
	return append(append(b, head...), line...)
}
