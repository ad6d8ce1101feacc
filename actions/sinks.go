package actions

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/nixflow/nixflow/event"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Format is the console's log format.
type Format string

// The console log formats.
const (
	FormatStructured Format = "structured"
	FormatSimple     Format = "simple"
	FormatJSON       Format = "json"
)

// Console writes a run's events to a terminal or a pipe, one line per line
// of output, prefixed with job and step. It is safe for concurrent use.
type Console struct {
	mu     sync.Mutex
	w      *bufio.Writer
	format Format
	color  bool
	buf    []byte
	pre    []byte
	// colors are the jobs' colours, by name (SetJobs).
	colors map[string]string
	json   *jsonEncoder
	clock  stamp
}

// NewConsole returns a console sink. color enables ANSI colours; the
// caller decides it (a terminal, and NO_COLOR unset).
func NewConsole(w io.Writer, format Format, color bool) *Console {
	return &Console{w: bufio.NewWriterSize(w, 64*1024), format: format, color: color,
		json: newJSONEncoder(), clock: stamp{layout: "15:04:05"}}
}

const (
	ansiReset = "\x1b[0m"
	ansiDim   = "\x1b[2m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiYel   = "\x1b[33m"
)

// jobColors are the colours of job names: never green or red (success
// and failure) nor yellow (stderr, warnings). The first six are the basic
// terminal colours; the rest, from the 256-colour palette, keep jobs apart
// in a larger workflow.
var jobColors = func() []string {
	c := []string{"\x1b[36m", "\x1b[35m", "\x1b[34m", "\x1b[96m", "\x1b[95m", "\x1b[94m"}
	for _, n := range []int{39, 135, 69, 171, 45, 99, 207, 75, 141, 213, 63, 177, 81, 105, 219, 111, 147, 183, 117, 165, 201, 129, 153, 189} {
		c = append(c, fmt.Sprintf("\x1b[38;5;%dm", n))
	}
	return c
}()

func (c *Console) paint(code, s string) string {
	if !c.color || code == "" {
		return s
	}
	return code + s + ansiReset
}

// SetJobs gives the jobs their colours in this order (the plan's), so that
// no two share one while there are colours enough.
func (c *Console) SetJobs(names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.colors = map[string]string{}
	for i, n := range names {
		c.colors[n] = jobColors[i%len(jobColors)]
	}
}

func (c *Console) jobColor(job string) string {
	if col, ok := c.colors[job]; ok {
		return col
	}
	h := fnv.New32a()
	h.Write([]byte(job))
	return jobColors[h.Sum32()%uint32(len(jobColors))]
}

// Emit implements Sink.
func (c *Console) Emit(events ...event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.emit(events)
}

func (c *Console) emit(events []event.Event) {
	for i := range events {
		c.buf = c.buf[:0]
		if c.format == FormatJSON {
			c.buf = c.json.append(c.buf, &events[i])
		} else {
			c.buf = c.appendText(c.buf, &events[i])
		}
		c.w.Write(c.buf)
	}
	c.w.Flush()
}

func (c *Console) appendText(b []byte, e *event.Event) []byte {
	simple := c.format == FormatSimple
	var msg string
	switch e.Event {
	case event.Output:
		msg = e.Message
		if e.Stream == "stderr" && !simple {
			msg = c.paint(ansiYel, msg)
		}
	case event.RunStart:
		if simple {
			return fmt.Appendf(b, "run %s started\n", e.Message)
		}
		return fmt.Appendf(b, "%s run %s started (%s)\n", c.paint(ansiDim, e.Time.Format("15:04:05")), e.Message, e.Run)
	case event.JobStart:
		msg = "job started (" + e.Message + ")"
	case event.StepStart:
		msg = "step started"
		if e.Attempts > 1 {
			msg = fmt.Sprintf("step started, attempt %d/%d", e.Attempt, e.Attempts)
		}
	case event.JobEnd:
		msg = c.result(e, "job")
	case event.StepEnd:
		msg = c.result(e, "step")
	case event.Progress:
		if e.Message == "" {
			return b
		}
		msg = c.paint(ansiDim, e.Message)
	case event.StepRetry, event.Warning:
		msg = c.paint(ansiYel, e.Message)
		if e.Job == "" {
			return append(append(append(b, "warning: "...), msg...), '\n')
		}
	default:
		return b
	}
	b = c.linePrefix(b, e)
	b = append(b, msg...)
	return append(b, '\n')
}

// linePrefix appends what starts each line about e in the text formats:
// the job and step, and in the structured format the time.
func (c *Console) linePrefix(b []byte, e *event.Event) []byte {
	if c.format == FormatSimple {
		b = append(b, '[')
		b = appendPrefix(b, e)
		return append(b, "] "...)
	}
	if c.color {
		b = append(b, ansiDim...)
	}
	b = c.clock.append(b, e.Time)
	if c.color {
		b = append(b, ansiReset...)
	}
	b = append(b, ' ')
	if c.color {
		b = append(b, c.jobColor(e.Job)...)
		b = append(appendPrefix(b, e), ansiReset...)
		return append(b, ansiDim+" │ "+ansiReset...)
	}
	return append(appendPrefix(b, e), " │ "...)
}

// writeChunk is how much formatted output a sink gathers before writing
// it: a block of lines is written in a few system calls, from a buffer of
// bounded size.
const writeChunk = 256 << 10

// EmitOutput implements BlockSink: each line formatted as Emit formats
// its event, from a prefix formatted once for the block.
func (c *Console) EmitOutput(line *event.Event, lines []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	json := c.format == FormatJSON
	if json && !c.json.plain(line) {
		c.emit(event.Lines(line, lines))
		return
	}
	var post string
	if json {
		c.pre = c.json.appendHead(c.pre[:0], line)
	} else {
		c.pre = c.linePrefix(c.pre[:0], line)
		if line.Stream == "stderr" && c.format != FormatSimple && c.color {
			c.pre, post = append(c.pre, ansiYel...), ansiReset
		}
	}
	b := c.buf[:0]
	for rest := lines; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		b = append(b, c.pre...)
		if json {
			b = appendTail(b, rest[:i])
		} else {
			b = append(append(append(b, rest[:i]...), post...), '\n')
		}
		rest = rest[i+1:]
		if len(b) >= writeChunk {
			c.w.Write(b)
			b = b[:0]
		}
	}
	c.w.Write(b)
	c.w.Flush()
	c.buf = b[:0]
}

// appendPrefix appends the job and step an event is about: job/step.
func appendPrefix(b []byte, e *event.Event) []byte {
	b = append(b, e.Job...)
	if e.Step != "" {
		b = append(append(b, '/'), e.Step...)
	}
	return b
}

// result words the end of a job or step. The simple format leaves out
// symbols and durations, so that its output is stable.
func (c *Console) result(e *event.Event, what string) string {
	simple := c.format == FormatSimple
	var word, mark, color string
	switch {
	case e.Result == event.StatusSuccess:
		word, mark, color = "succeeded", "✓ ", ansiGreen
	case e.Result == event.StatusFailure && e.Allowed:
		word, mark, color = "failed (allowed)", "✗ ", ansiYel
	case e.Result == event.StatusFailure:
		word, mark, color = "failed", "✗ ", ansiRed
	default:
		word, mark, color = string(e.Result), "○ ", ansiDim
	}
	s := what + " " + word
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if simple {
		return s
	}
	s = c.paint(color, mark+s)
	if e.Duration > 0 {
		s += c.paint(ansiDim, fmt.Sprintf(" (%s)", formatDuration(time.Duration(e.Duration*float64(time.Second)))))
	}
	return s
}

// formatDuration rounds a duration for people.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// flushDelay bounds how long the files of a run (its events, the job
// logs) keep what they were given in memory: they write it in batches,
// not one system call per event, and a run that is killed loses at most
// this much of the end of its record.
const flushDelay = 200 * time.Millisecond

// EventsFile writes job and step events (not output lines) as JSON lines,
// within flushDelay of getting them.
type EventsFile struct {
	mu sync.Mutex
	w  *bufio.Writer
	f  io.Closer
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
	return &EventsFile{w: bufio.NewWriterSize(f, 64<<10), f: f}, nil
}

// Emit implements Sink.
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
		s.buf = appendJSON(s.buf[:0], &events[i])
		s.w.Write(s.buf)
		wrote = true
	}
	if wrote && s.timer == nil {
		s.timer = time.AfterFunc(flushDelay, s.flushLater)
	}
}

// EmitOutput implements BlockSink: the file has no output lines.
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
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// JobLogs keeps one log file per job in a run directory (logs/<job>.log):
// every output line and event of the job, with a timestamp and the step.
// A job's file is open only while the job runs, so that a run of
// thousands of jobs does not run out of file descriptors. Output and
// events are gathered and written once writeChunk bytes are held, at the
// end of a step or of the job, or within flushDelay: a step printing
// fast is written in a few large writes rather than one per read of its
// pipe, and a killed run still leaves its log readable up to the last
// flushDelay.
type JobLogs struct {
	mu    sync.Mutex
	dir   string
	files map[string]*jobLog
	err   error
	// OnError, if set, is told once per job of the first failure to
	// write its log (a full disk): the run goes on, the log stays short.
	OnError func(job, file string, err error)
	failed  map[string]bool
	pre     []byte
	clock   stamp
	timer   *time.Timer
	closed  bool
}

// jobLog is the open log file of a job and what is still to write to it.
type jobLog struct {
	f       *os.File
	pending []byte
}

// NewJobLogs writes logs under dir, creating it.
func NewJobLogs(dir string) (*JobLogs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &JobLogs{dir: dir, files: map[string]*jobLog{},
		clock: stamp{layout: "2006-01-02T15:04:05.000Z", utc: true}}, nil
}

// Emit implements Sink.
func (l *JobLogs) Emit(events ...event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	held := false
	for i := range events {
		e := &events[i]
		if e.Job == "" {
			continue
		}
		jl := l.file(e.Job)
		if jl == nil {
			continue
		}
		b := l.linePrefix(jl.pending, e)
		switch e.Event {
		case event.Output:
			b = append(b, e.Message...)
		default:
			b = append(b, "-- "...)
			b = append(b, e.Event...)
			result := string(e.Result)
			if e.Allowed {
				result += " (allowed)"
			}
			for _, s := range []string{result, e.Reason, e.Message} {
				if s != "" {
					b = append(b, ' ')
					b = append(b, s...)
				}
			}
		}
		jl.pending = append(b, '\n')
		switch e.Event {
		case event.JobEnd:
			l.flushJob(e.Job, jl)
			l.closeFile(e.Job)
			continue
		case event.StepEnd:
			l.flushJob(e.Job, jl)
			continue
		}
		held = true
	}
	if held && l.timer == nil {
		l.timer = time.AfterFunc(flushDelay, l.flushLater)
	}
}

// linePrefix appends what starts the line of e in a log file: the time,
// the step, and whether it is output on stderr.
func (l *JobLogs) linePrefix(b []byte, e *event.Event) []byte {
	b = l.clock.append(b, e.Time)
	b = append(b, ' ')
	if e.Step != "" {
		b = append(b, '[')
		b = append(b, e.Step...)
		b = append(b, "] "...)
	}
	if e.Event == event.Output && e.Stream == "stderr" {
		b = append(b, "(stderr) "...)
	}
	return b
}

// EmitOutput implements BlockSink: the lines are held after the job's
// events still held, and written once writeChunk bytes are, at the end
// of the step, or within flushDelay.
func (l *JobLogs) EmitOutput(line *event.Event, lines []byte) {
	if line.Job == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	jl := l.file(line.Job)
	if jl == nil {
		return
	}
	l.pre = l.linePrefix(l.pre[:0], line)
	for rest := lines; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		jl.pending = append(append(jl.pending, l.pre...), rest[:i+1]...)
		rest = rest[i+1:]
		if len(jl.pending) >= writeChunk {
			l.flushJob(line.Job, jl)
		}
	}
	if len(jl.pending) > 0 && l.timer == nil {
		l.timer = time.AfterFunc(flushDelay, l.flushLater)
	}
}

// flushLater writes what every log holds, once flushDelay is over.
func (l *JobLogs) flushLater() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	if l.closed {
		return
	}
	for job, jl := range l.files {
		if jl != nil {
			l.flushJob(job, jl)
		}
	}
}

// flushJob writes what job's log holds, reporting a failure once per
// job.
func (l *JobLogs) flushJob(job string, jl *jobLog) {
	if len(jl.pending) == 0 {
		return
	}
	_, err := jl.f.Write(jl.pending)
	jl.pending = jl.pending[:0]
	if err == nil {
		return
	}
	if l.failed == nil {
		l.failed = map[string]bool{}
	}
	if !l.failed[job] {
		l.failed[job] = true
		if l.OnError != nil {
			l.OnError(job, jl.f.Name(), err)
		}
	}
}

func (l *JobLogs) closeFile(job string) {
	if jl := l.files[job]; jl != nil {
		if err := jl.f.Close(); err != nil && l.err == nil {
			l.err = err
		}
	}
	delete(l.files, job)
}

// file returns job's open log, opening it; nil when it cannot be
// opened (reported once).
func (l *JobLogs) file(job string) *jobLog {
	if jl, ok := l.files[job]; ok {
		return jl
	}
	name := filepath.Join(l.dir, job+".log")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		l.files[job] = nil
		if l.OnError != nil {
			l.OnError(job, name, err)
		} else if l.err == nil {
			l.err = err
		}
		return nil
	}
	jl := &jobLog{f: f}
	l.files[job] = jl
	return jl
}

// Close writes what the logs hold, closes every log file and reports
// the first error met.
func (l *JobLogs) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.err
	}
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	for job, jl := range l.files {
		if jl != nil {
			l.flushJob(job, jl)
			if err := jl.f.Close(); err != nil && l.err == nil {
				l.err = err
			}
		}
	}
	return l.err
}

// LogPath is the log file of a job in a run directory.
func LogPath(runDir, job string) string {
	return filepath.Join(runDir, "logs", job+".log")
}
