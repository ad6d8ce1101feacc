package output

import (
	"bufio"
	"io"
	"os"
	"sync"
	"time"

	"github.com/nixflow/nixflow/event"
)

// EventsFile writes job and step events (not output lines) as JSON lines,
// within flushDelay of getting them.
type EventsFile struct {
	mu   sync.Mutex
	w    *bufio.Writer
	file io.Closer
	f    *jsonFormat
	// OnError, if set, is told of the first failure to write the file
	// (a full disk): the run goes on without the rest of its events.
	OnError func(err error)
	failed  bool
	buf     []byte
	timer   *time.Timer
	closed  bool
}

// NewEventsFile creates (truncates) path.
func NewEventsFile(path string) (*EventsFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	return &EventsFile{w: bufio.NewWriterSize(f, 64<<10), file: f, f: newJSONFormat()}, nil
}

// Emit implements event.Sink.
func (s *EventsFile) Emit(events ...event.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	wrote := false
	for i := range events {
		if events[i].Event == event.Output {
			continue
		}
		s.buf = s.f.appendEvent(s.buf[:0], &events[i])
		s.w.Write(s.buf)
		wrote = true
	}
	if wrote && s.timer == nil {
		s.timer = time.AfterFunc(flushDelay, s.flushLater)
	}
}

// EmitOutput implements event.BlockSink: the file has no output lines.
func (s *EventsFile) EmitOutput(*event.Event, []byte) {}

// flushLater writes what the file holds, once flushDelay is over.
func (s *EventsFile) flushLater() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = nil
	if !s.closed {
		s.flush()
	}
}

func (s *EventsFile) flush() error {
	err := s.w.Flush()
	if err != nil && !s.failed {
		s.failed = true
		if s.OnError != nil {
			s.OnError(err)
		}
	}
	return err
}

// Close flushes and closes the file.
func (s *EventsFile) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	err := s.flush()
	if cerr := s.file.Close(); err == nil {
		err = cerr
	}
	return err
}
