// Package eventtest holds what tests of a run's events share: a sink
// that keeps what it is given.
package eventtest

import (
	"sync"

	"github.com/nixflow/nixflow/event"
)

// Recorder is an event.Sink that keeps the events it is given, in order.
// It is safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []event.Event
}

// Emit implements event.Sink.
func (r *Recorder) Emit(events ...event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, events...)
}

// Events returns the events recorded so far.
func (r *Recorder) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// Messages returns the messages of the events recorded so far.
func (r *Recorder) Messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var m []string
	for _, e := range r.events {
		m = append(m, e.Message)
	}
	return m
}
