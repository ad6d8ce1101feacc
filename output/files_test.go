package output

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/event"
)

// TestJobLogsFull: a job log that cannot be written (a full disk, here
// /dev/full) is reported once for its job, naming the file; the other
// jobs' logs are written as usual.
func TestJobLogsFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := t.TempDir()
	logs := newJobLogs(t, dir)
	full := filepath.Join(dir, "full.log")
	if err := os.Symlink("/dev/full", full); err != nil {
		t.Fatal(err)
	}
	var reports []string
	logs.OnError = func(job, file string, err error) { reports = append(reports, job+" "+file) }
	for i := 0; i < 3; i++ {
		logs.Emit(event.Event{Job: "full", Event: event.Output, Message: "x"}, event.Event{Job: "ok", Event: event.Output, Message: "y"})
	}
	logs.Emit(event.Event{Job: "full", Event: event.JobEnd}, event.Event{Job: "ok", Event: event.JobEnd})
	if err := logs.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if diff := cmp.Diff([]string{"full " + full}, reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	data, err := os.ReadFile(filepath.Join(dir, "ok.log"))
	if err != nil || len(data) == 0 {
		t.Errorf("ok.log: %q, %v", data, err)
	}
}

// TestRunFilesFlushWithoutClose: what the events file and a job's log
// hold reaches the disk on its own, shortly, without Close: a run that
// is killed still leaves readable records. Output written after held
// events comes after them.
func TestRunFilesFlushWithoutClose(t *testing.T) {
	dir := t.TempDir()
	events, err := NewEventsFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	logs := newJobLogs(t, filepath.Join(dir, "logs"))
	defer logs.Close()
	start := event.Event{Job: "j", Step: "s", Event: event.StepStart}
	events.Emit(start)
	logs.Emit(start)
	logs.EmitOutput(&event.Event{Job: "j", Step: "s", Event: event.Output, Stream: "stdout"}, []byte("out\n"))
	logs.Emit(event.Event{Job: "j", Step: "s", Event: event.StepEnd, Result: event.StatusSuccess})
	want := map[string]int{"events.jsonl": 1, "logs/j.log": 3}
	deadline := time.Now().Add(30 * time.Second)
	for name, lines := range want {
		for {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil && strings.Count(string(data), "\n") == lines {
				if name == "logs/j.log" && !regexp.MustCompile(`(?s)step_start.*\] out\n.*step_end success\n$`).Match(data) {
					t.Errorf("%s out of order:\n%s", name, data)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %q, %v; want %d lines", name, data, err, lines)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestJobLogsStepEnd: once a step has ended, its job's log holds all of
// it (output and events), without waiting for Close or the flush timer.
func TestJobLogsStepEnd(t *testing.T) {
	dir := t.TempDir()
	logs := newJobLogs(t, dir)
	defer logs.Close()
	logs.Emit(event.Event{Job: "j", Step: "s", Event: event.StepStart})
	logs.EmitOutput(&event.Event{Job: "j", Step: "s", Event: event.Output, Stream: "stdout"}, []byte("one\ntwo\n"))
	logs.Emit(event.Event{Job: "j", Step: "s", Event: event.StepEnd, Result: event.StatusSuccess})
	data, err := os.ReadFile(filepath.Join(dir, "j.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\S+ \[s\] -- step_start\n\S+ \[s\] one\n\S+ \[s\] two\n\S+ \[s\] -- step_end success\n$`).Match(data) {
		t.Errorf("j.log after the step's end:\n%s", data)
	}
}

// TestJobLogsPreallocated: a long log is preallocated as it grows and
// the reservation is given back when it is closed, the lines a log held
// before kept.
func TestJobLogsPreallocated(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "j.log")
	if err := os.WriteFile(name, []byte("before\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := newJobLogs(t, dir)
	line := &event.Event{Job: "j", Step: "s", Event: event.Output, Stream: "stdout"}
	block := []byte(strings.Repeat(strings.Repeat("x", 63)+"\n", 1024))
	for range 3 * preallocFrom / len(block) {
		logs.EmitOutput(line, block)
	}
	logs.Emit(event.Event{Job: "j", Step: "s", Event: event.StepEnd, Result: event.StatusSuccess})
	// Where the file system preallocates (a scratch file tells), the
	// open log takes more disk than it holds.
	scratch, err := os.Create(filepath.Join(dir, "scratch"))
	if err != nil {
		t.Fatal(err)
	}
	canReserve := preallocate(scratch, 0, 4096) == nil
	scratch.Close()
	if size, disk := usage(t, name); canReserve && disk < size+preallocMin/2 {
		t.Errorf("open log: %d bytes on disk for %d; want it preallocated", disk, size)
	}
	logs.Emit(event.Event{Job: "j", Event: event.JobEnd, Result: event.StatusSuccess})
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "before\n") || !strings.HasSuffix(string(data), "-- job_end success\n") {
		t.Errorf("log starts %q, ends %q", data[:20], data[len(data)-40:])
	}
	if lines := strings.Count(string(data), "\n"); lines != 1+3*preallocFrom/64+2 {
		t.Errorf("%d lines", lines)
	}
	size, disk := usage(t, name)
	if size != int64(len(data)) || disk > size+1<<20 {
		t.Errorf("closed log: size %d, %d bytes on disk; want %d, no reservation left", size, disk, len(data))
	}
}

// usage is a file's size and the disk space it takes.
func usage(t *testing.T, name string) (size, disk int64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size, st.Blocks * 512
}

// TestJobLogsOpenWhileWritten: a job's log is opened at its first write
// and closed when the job ends, so that jobs that run at once hold no
// descriptor until their logs are written (each process a run starts
// gets a copy of them). A log that cannot be opened is reported once,
// however much output its job prints, and the other jobs' logs are
// written as usual.
func TestJobLogsOpenWhileWritten(t *testing.T) {
	// In fake time, which stands still here: the logs' flush timer
	// (flushDelay) would open them on a slow machine.
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		logs := newJobLogs(t, dir)
		defer logs.Close()
		var reports []string
		logs.OnError = func(job, file string, err error) { reports = append(reports, job) }
		if err := os.Mkdir(filepath.Join(dir, "blocked.log"), 0o700); err != nil {
			t.Fatal(err) // a directory where the log would be: it cannot be opened
		}
		open := func() int {
			t.Helper()
			fds, err := os.ReadDir("/proc/self/fd")
			if err != nil {
				t.Skipf("no /proc/self/fd: %v", err)
			}
			n := 0
			for _, fd := range fds {
				if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
					n++
				}
			}
			return n
		}
		jobs := []string{"a", "b", "c", "blocked"}
		for _, j := range jobs {
			logs.Emit(event.Event{Job: j, Event: event.JobStart})
		}
		if n := open(); n != 0 {
			t.Errorf("%d logs open before anything was written, want 0", n)
		}
		line := strings.Repeat("x", 100) + "\n"
		for _, j := range jobs {
			logs.EmitOutput(&event.Event{Job: j, Step: "s", Event: event.Output, Stream: "stdout"}, []byte(strings.Repeat(line, 3*writeChunk/len(line))))
		}
		if n := open(); n != 3 {
			t.Errorf("%d logs open once written, want 3", n)
		}
		for _, j := range jobs {
			logs.Emit(event.Event{Job: j, Event: event.JobEnd, Result: event.StatusSuccess})
		}
		if n := open(); n != 0 {
			t.Errorf("%d logs open after their jobs ended, want 0", n)
		}
		if diff := cmp.Diff([]string{"blocked"}, reports); diff != "" {
			t.Errorf("reports (-want +got):\n%s", diff)
		}
		for _, j := range jobs[:3] {
			data, err := os.ReadFile(filepath.Join(dir, j+".log"))
			if err != nil || strings.Count(string(data), "\n") != 2+3*writeChunk/len(line) {
				t.Errorf("%s.log: %d lines, %v", j, strings.Count(string(data), "\n"), err)
			}
		}

	})
}

// newJobLogs returns job logs in dir, for the caller to close.
func newJobLogs(t *testing.T, dir string) *JobLogs {
	t.Helper()
	logs, err := NewJobLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return logs
}

// Output that comes one event a line (CRLF lines, pieces of a line cut at
// 64 KiB) is written once writeChunk bytes are held, as lines that come in
// blocks are, not held until the step ends or the timer fires (fake time
// stands still here): a step printing GBs that way keeps memory bounded.
func TestJobLogsWriteEventLinesInChunks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		logs := newJobLogs(t, dir)
		defer logs.Close()
		line := strings.Repeat("x", 1000)
		for range 2 * writeChunk / len(line) {
			logs.Emit(event.Event{Time: time.Now(), Job: "j", Step: "s", Event: event.Output, Stream: "stdout", Message: line})
		}
		fi, err := os.Stat(filepath.Join(dir, "j.log"))
		if err != nil {
			t.Fatalf("nothing written before the step ended: %v", err)
		}
		if fi.Size() < writeChunk {
			t.Errorf("%d bytes written of %d held, want at least %d", fi.Size(), 2*writeChunk, writeChunk)
		}
	})
}
