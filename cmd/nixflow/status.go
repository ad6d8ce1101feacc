package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/output"
)

// silentAfter is how long a step may print nothing before a line says it
// is still running (off a terminal), and then how often that line comes.
const silentAfter = 30 * time.Second

// consoleSinks returns the console sink for a run, with what shows where
// the run is: on a terminal a live status line under the output, else a
// line for each step silent for silentAfter. stop ends them; it must be
// called before anything else is written to w.
func (a *app) consoleSinks(w io.Writer, format output.Format, plan *compiler.Plan) (sinks event.Sinks, stop func()) {
	var names []string
	for _, j := range plan.Jobs {
		names = append(names, j.Name)
	}
	if format == output.FormatJSON {
		return event.Sinks{output.NewConsole(w, format, a.colorful(w))}, func() {}
	}
	if width, ok := a.terminalWidth(w); ok {
		s := newStatusLine(w, len(plan.Jobs), width, a.colorful(w))
		console := output.NewConsole(s, format, a.colorful(w))
		console.SetJobs(names)
		if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			// nixflow's own messages (Ctrl-C) go to the same screen: they
			// step around the line too. After stop this passes through.
			a.stderr = s.around(a.stderr)
		}
		s.start()
		return event.Sinks{console, s}, s.stop
	}
	console := output.NewConsole(w, format, a.colorful(w))
	console.SetJobs(names)
	watch := newSilenceWatch(console, silentAfter)
	watch.start()
	return event.Sinks{console, watch}, watch.stop
}

// terminalWidth reports whether w is a terminal that can hold a status
// line, and its width.
func (a *app) terminalWidth(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok || a.getenv("TERM") == "dumb" || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width < 20 {
		width = 80
	}
	return width, true
}

// statusLine keeps one line at the bottom of a terminal that says how far
// the run is: jobs done, running (with their elapsed time) and queued. It
// is an io.Writer for the console: before output goes through, the line is
// erased, and it is drawn again after, so it never mixes with a step's
// output. It is also a sink, to follow the jobs.
type statusLine struct {
	mu      sync.Mutex
	w       io.Writer
	width   int
	color   bool
	total   int
	done    int
	running map[string]time.Time
	order   []string // running jobs, in the order they started
	shown   bool
	midLine bool
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	now     func() time.Time
}

func newStatusLine(w io.Writer, total, width int, color bool) *statusLine {
	return &statusLine{w: w, total: total, width: width, color: color,
		running: map[string]time.Time{}, quit: make(chan struct{}), now: time.Now}
}

// Write passes console output through, the status line moved out of its
// way. The console writes whole lines.
func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.erase()
	n, err := s.w.Write(p)
	// A write that ends mid-line (a batch larger than the console's
	// buffer) is continued by the next: the line waits until then.
	s.midLine = len(p) > 0 && p[len(p)-1] != '\n'
	s.draw()
	return n, err
}

// around returns a writer to w (another stream on the same terminal) that
// moves the status line out of the way as Write does.
func (s *statusLine) around(w io.Writer) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.erase()
		n, err := w.Write(p)
		s.draw()
		return n, err
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Emit implements actions.Sink.
func (s *statusLine) Emit(events ...event.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, e := range events {
		switch e.Event {
		case event.JobStart:
			s.running[e.Job] = s.now()
			s.order = append(s.order, e.Job)
			changed = true
		case event.JobEnd:
			if _, ok := s.running[e.Job]; ok {
				delete(s.running, e.Job)
				s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == e.Job })
			}
			s.done++
			changed = true
		}
	}
	if changed {
		s.erase()
		s.draw()
	}
}

// EmitOutput implements actions.BlockSink: output does not change the
// status line.
func (s *statusLine) EmitOutput(*event.Event, []byte) {}

func (s *statusLine) start() {
	s.wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
				s.mu.Lock()
				s.erase()
				s.draw()
				s.mu.Unlock()
			}
		}
	})
}

// stop removes the line for good.
func (s *statusLine) stop() {
	s.once.Do(func() {
		close(s.quit)
		s.wg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.erase()
		s.done = -1 // draw nothing from now on
	})
}

func (s *statusLine) erase() {
	if s.shown {
		io.WriteString(s.w, "\r\x1b[K")
		s.shown = false
	}
}

func (s *statusLine) draw() {
	if s.done < 0 || s.midLine {
		return
	}
	line := s.text()
	if s.color {
		line = "\x1b[2m" + line + "\x1b[0m"
	}
	io.WriteString(s.w, line)
	s.shown = true
}

// text is the status line, cut to the terminal's width so that it never
// wraps (a wrapped line could not be erased).
func (s *statusLine) text() string {
	queued := max(s.total-s.done-len(s.running), 0)
	var b strings.Builder
	fmt.Fprintf(&b, "▶ %d/%d done · %d running", s.done, s.total, len(s.running))
	now := s.now()
	for i, name := range s.order {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		b.WriteString(sep + name + " " + shortDuration(now.Sub(s.running[name])))
	}
	fmt.Fprintf(&b, " · %d queued", queued)
	runes := []rune(b.String())
	if len(runes) > s.width-1 {
		runes = append(runes[:s.width-2], '…')
	}
	return string(runes)
}

// shortDuration writes an elapsed time to the second: 7s, 1m30s, 1h2m3s.
func shortDuration(d time.Duration) string {
	return d.Truncate(time.Second).String()
}

// silenceWatch follows the running steps and, for each that has printed
// nothing for a while, has the console say so: "still running, 1m30s".
// Off a terminal that is how a long quiet step (a compiler, a download)
// is told from a hang.
type silenceWatch struct {
	mu      sync.Mutex
	console event.Sink
	after   time.Duration
	steps   map[[2]string]*quietStep
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

type quietStep struct {
	started, last time.Time
}

func newSilenceWatch(console event.Sink, after time.Duration) *silenceWatch {
	return &silenceWatch{console: console, after: after, steps: map[[2]string]*quietStep{}, quit: make(chan struct{})}
}

// Emit implements actions.Sink.
func (w *silenceWatch) Emit(events ...event.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for _, e := range events {
		key := [2]string{e.Job, e.Step}
		switch e.Event {
		case event.StepStart:
			w.steps[key] = &quietStep{started: now, last: now}
		case event.Output:
			if st := w.steps[key]; st != nil {
				st.last = now
			}
		case event.StepEnd:
			delete(w.steps, key)
		}
	}
}

// EmitOutput implements actions.BlockSink: the step printed.
func (w *silenceWatch) EmitOutput(line *event.Event, _ []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st := w.steps[[2]string{line.Job, line.Step}]; st != nil {
		st.last = time.Now()
	}
}

func (w *silenceWatch) start() {
	w.wg.Go(func() {
		t := time.NewTicker(w.after / 6)
		defer t.Stop()
		for {
			select {
			case <-w.quit:
				return
			case <-t.C:
				w.check()
			}
		}
	})
}

func (w *silenceWatch) check() {
	w.mu.Lock()
	now := time.Now()
	var notes []event.Event
	for key, st := range w.steps {
		if now.Sub(st.last) >= w.after {
			st.last = now
			notes = append(notes, event.Event{Time: now, Job: key[0], Step: key[1], Event: event.Progress,
				Message: "still running, " + shortDuration(now.Sub(st.started))})
		}
	}
	w.mu.Unlock()
	slices.SortFunc(notes, func(a, b event.Event) int { return strings.Compare(a.Job+"/"+a.Step, b.Job+"/"+b.Step) })
	if len(notes) > 0 {
		w.console.Emit(notes...)
	}
}

func (w *silenceWatch) stop() {
	w.once.Do(func() {
		close(w.quit)
		w.wg.Wait()
	})
}
