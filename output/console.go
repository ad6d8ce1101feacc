package output

import (
	"bufio"
	"io"
	"sync"

	"github.com/nixflow/nixflow/event"
)

// Console writes a run's events to a terminal or a pipe in one of the
// formats, one line per line of output. It is safe for concurrent use.
type Console struct {
	mu   sync.Mutex
	w    *bufio.Writer
	f    format
	buf  []byte
	head []byte
	// structured is f when it is the structured format, for SetJobs.
	structured *structured
}

// NewConsole returns a console sink. color enables ANSI colours in the
// structured format; the caller decides it (a terminal, and NO_COLOR
// unset). An unknown format is the structured one.
func NewConsole(w io.Writer, f Format, color bool) *Console {
	c := &Console{w: bufio.NewWriterSize(w, 64*1024)}
	switch f {
	case FormatJSON:
		c.f = newJSONFormat()
	case FormatSimple:
		c.f = simple{p: painter(color)}
	default:
		c.structured = newStructured(color)
		c.f = c.structured
	}
	return c
}

// SetJobs gives the jobs their colours in this order (the plan's), so that
// no two share one while there are colours enough.
func (c *Console) SetJobs(names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.structured != nil {
		c.structured.setJobs(names)
	}
}

// Emit implements event.Sink.
func (c *Console) Emit(events ...event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.emit(events)
}

func (c *Console) emit(events []event.Event) {
	for i := range events {
		c.buf = c.f.appendEvent(c.buf[:0], &events[i])
		c.w.Write(c.buf)
	}
	c.w.Flush()
}

// EmitOutput implements event.BlockSink: each line written as Emit
// writes its event, from a head formatted once for the block.
func (c *Console) EmitOutput(line *event.Event, lines []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	head, ok := c.f.appendHead(c.head[:0], line)
	if !ok {
		c.emit(event.Lines(line, lines))
		return
	}
	c.head = head
	c.buf = appendBlock(c.f, c.buf[:0], head, lines, func(b []byte) { c.w.Write(b) })
	c.w.Write(c.buf)
	c.w.Flush()
}
