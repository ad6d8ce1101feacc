package output

import (
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nixflow/nixflow/event"
)

// JobLogs keeps one log file per job in a run directory (logs/<job>.log):
// every output line and event of the job, with a timestamp and the step.
// A job's file is opened at its first write and closed when the job
// ends: a run of thousands of jobs does not run out of file descriptors,
// and a job shorter than flushDelay holds its file open only for the one
// write at its end (every process a run starts gets a copy of nixflow's
// open descriptors, which costs in proportion to their number). Output and
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
	f       *logFile
	head    []byte
	timer   *time.Timer
	closed  bool
}

// jobLog is the log file of a job, open once written to, and what is
// still to write to it.
type jobLog struct {
	name string
	f    *os.File
	// unopened tells that f could not be opened: the job's lines go
	// nowhere.
	unopened bool
	pending  []byte
	// size is how much was written to f by this run; reserved how far
	// it is preallocated (see reserve), or -1 where the file system
	// cannot.
	size, reserved int64
}

// A long log is preallocated ahead of its writes, once it holds
// preallocFrom bytes: as much again as it holds, at least preallocMin
// and at most preallocMax. On ext4, writing 1.5 GB of log (a step
// printing 1 GB) then costs about half the system time. The reservation
// past the end is given back when the log is closed; a run that is
// killed leaves at most preallocMax of it, until the log is removed.
const (
	preallocFrom = 4 << 20
	preallocMin  = 8 << 20
	preallocMax  = 64 << 20
)

// reserve preallocates jl's file ahead of a write of n bytes.
func (jl *jobLog) reserve(n int) {
	if jl.reserved < 0 || jl.size < preallocFrom || jl.size+int64(n) <= jl.reserved {
		return
	}
	from := max(jl.reserved, jl.size)
	grow := min(max(jl.size, preallocMin), preallocMax)
	if preallocate(jl.f, from, grow) != nil {
		jl.reserved = -1
		return
	}
	jl.reserved = from + grow
}

// close gives back what was reserved past the end of the log (where
// its appends ended: the file may have held lines before), and closes
// it.
func (jl *jobLog) close() error {
	if jl.f == nil {
		return nil
	}
	if jl.reserved > 0 {
		if end, err := jl.f.Seek(0, io.SeekCurrent); err == nil {
			jl.f.Truncate(end)
		}
	}
	return jl.f.Close()
}

// NewJobLogs writes logs under dir, creating it.
func NewJobLogs(dir string) (*JobLogs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &JobLogs{dir: dir, files: map[string]*jobLog{},
		f: newLogFile()}, nil
}

// Emit implements event.Sink.
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
		jl.pending = l.f.appendEvent(jl.pending, e)
		if len(jl.pending) >= writeChunk {
			// Lines that come one event each (CRLF, lines cut at 64 KiB)
			// are held no longer than lines that come in blocks.
			l.flushJob(e.Job, jl)
		}
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

// EmitOutput implements event.BlockSink: the lines are held after the job's
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
	l.head, _ = l.f.appendHead(l.head[:0], line)
	jl.pending = appendBlock(l.f, jl.pending, l.head, lines, func(b []byte) { l.write(line.Job, jl, b) })
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
	if len(jl.pending) > 0 {
		l.write(job, jl, jl.pending)
		jl.pending = jl.pending[:0]
	}
}

// write writes b to job's log, opening it at the first write. A log that
// cannot be opened is reported, and its job's lines are dropped from then
// on.
func (l *JobLogs) write(job string, jl *jobLog, b []byte) {
	if jl.unopened {
		return
	}
	if jl.f == nil {
		f, err := openAppend(jl.name)
		if err != nil {
			jl.unopened = true
			l.files[job] = nil
			if l.OnError != nil {
				l.OnError(job, jl.name, err)
			} else if l.err == nil {
				l.err = err
			}
			return
		}
		jl.f = f
	}
	jl.reserve(len(b))
	n, err := jl.f.Write(b)
	jl.size += int64(n)
	if err == nil {
		return
	}
	if l.failed == nil {
		l.failed = map[string]bool{}
	}
	if !l.failed[job] {
		l.failed[job] = true
		if l.OnError != nil {
			l.OnError(job, jl.name, err)
		}
	}
}

func (l *JobLogs) closeFile(job string) {
	if jl := l.files[job]; jl != nil {
		if err := jl.close(); err != nil && l.err == nil {
			l.err = err
		}
	}
	delete(l.files, job)
}

// file returns job's log; nil when it could not be opened (reported
// once).
func (l *JobLogs) file(job string) *jobLog {
	if jl, ok := l.files[job]; ok {
		return jl
	}
	jl := &jobLog{name: filepath.Join(l.dir, job+".log")}
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
			if err := jl.close(); err != nil && l.err == nil {
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

// openAppend opens name to append to it, creating it. A regular file
// does not go through Go's poller, which os.OpenFile tries first at the
// cost of a few system calls: one per job's log is what a run of many
// small jobs notices.
func openAppend(name string) (*os.File, error) {
	fd, err := syscall.Open(name, syscall.O_CREAT|syscall.O_APPEND|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}
