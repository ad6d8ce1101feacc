package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/internal/eventtest"
)

// TestStatusLine checks that the line says how far the run is, and that
// output always goes through with the line erased first and drawn after:
// a step's line is never mixed with it.
func TestStatusLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		s := newStatusLine(&out, 3, 80, false)
		s.start()
		s.Emit(event.Event{Event: event.JobStart, Job: "build"})
		s.Emit(event.Event{Event: event.JobStart, Job: "lint"})
		s.Emit(event.Event{Event: event.JobEnd, Job: "lint"})
		time.Sleep(90 * time.Second)
		synctest.Wait()
		if _, err := s.Write([]byte("build/compile │ hello\n")); err != nil {
			t.Fatal(err)
		}
		s.stop()
		got := out.String()
		if want := "\r\x1b[K▶ 1/3 done · 1 running: build 1m30s · 1 queued\r\x1b[Kbuild/compile │ hello\n▶ 1/3 done"; !strings.Contains(got, want) {
			t.Errorf("output %q does not contain %q", got, want)
		}
		if !strings.HasSuffix(got, "\r\x1b[K") {
			t.Errorf("stop left the line: %q", got)
		}
		// Every step line starts a terminal line of its own.
		for _, part := range strings.Split(got, "\r\x1b[K") {
			if i := strings.Index(part, "build/compile"); i > 0 {
				t.Errorf("output mixed into the status line: %q", part)
			}
		}
	})
}

// TestStatusLineMidLine checks that a write ending mid-line is continued
// by the next before the status line comes back.
func TestStatusLineMidLine(t *testing.T) {
	var out bytes.Buffer
	s := newStatusLine(&out, 1, 80, false)
	s.Emit(event.Event{Event: event.JobStart, Job: "a"})
	s.Write([]byte("half a "))
	s.Emit(event.Event{Event: event.JobEnd, Job: "a"})
	s.Write([]byte("line\n"))
	if got := out.String(); !strings.Contains(got, "\r\x1b[Khalf a line\n▶ 1/1 done") {
		t.Errorf("a line was cut: %q", got)
	}
}

// TestStatusLineAround checks that nixflow's own messages on the same
// terminal step around the line as step output does.
func TestStatusLineAround(t *testing.T) {
	var out bytes.Buffer
	s := newStatusLine(&out, 1, 80, false)
	s.Emit(event.Event{Event: event.JobStart, Job: "a"})
	fmt.Fprintln(s.around(&out), "nixflow: interrupt")
	if got := out.String(); !strings.Contains(got, "queued\r\x1b[Knixflow: interrupt\n▶ 0/1 done") {
		t.Errorf("message mixed with the line: %q", got)
	}
}

func TestStatusLineWidth(t *testing.T) {
	s := newStatusLine(&bytes.Buffer{}, 9, 30, false)
	s.now = func() time.Time { return time.Unix(100, 0) }
	for _, j := range []string{"a-long-job-name", "another-one"} {
		s.Emit(event.Event{Event: event.JobStart, Job: j})
	}
	if got := s.text(); len([]rune(got)) != 29 || !strings.HasSuffix(got, "…") {
		t.Errorf("text() = %q (%d runes), want 29 ending in …", got, len([]rune(got)))
	}
}

// TestSilenceWatch checks the "still running" lines: one after 30 s of
// silence, again every 30 s, none while a step prints, none once it ended.
func TestSilenceWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &eventtest.Recorder{}
		w := newSilenceWatch(rec, 30*time.Second)
		w.start()
		defer w.stop()
		w.Emit(event.Event{Event: event.StepStart, Job: "build", Step: "compile"})
		w.Emit(event.Event{Event: event.StepStart, Job: "test", Step: "chatty"})
		for range 9 {
			time.Sleep(10 * time.Second)
			w.Emit(event.Event{Event: event.Output, Job: "test", Step: "chatty", Message: "tick"})
		}
		synctest.Wait()
		w.Emit(event.Event{Event: event.StepEnd, Job: "build", Step: "compile"})
		time.Sleep(60 * time.Second)
		synctest.Wait()
		var got []string
		for _, e := range rec.Events() {
			got = append(got, e.Job+"/"+e.Step+": "+e.Message)
		}
		// chatty printed every 10 s until 1m30s, then fell silent.
		want := []string{"build/compile: still running, 30s", "build/compile: still running, 1m0s", "build/compile: still running, 1m30s",
			"test/chatty: still running, 2m0s", "test/chatty: still running, 2m30s"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
