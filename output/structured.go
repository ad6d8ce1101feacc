package output

import (
	"fmt"
	"hash/fnv"

	"github.com/nixflow/nixflow/event"
)

// structured is the default format: "15:04:05 job/step │ text", coloured
// on a terminal, results with marks and durations.
type structured struct {
	p     painter
	clock stamp
	// colors are the jobs' colours, by name (setJobs).
	colors map[string]string
	// post ends the lines of the block whose head was made last.
	post string
}

func newStructured(color bool) *structured {
	return &structured{p: painter(color), clock: stamp{layout: "15:04:05"}}
}

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

// setJobs gives the jobs their colours in this order.
func (s *structured) setJobs(names []string) {
	s.colors = map[string]string{}
	for i, n := range names {
		s.colors[n] = jobColors[i%len(jobColors)]
	}
}

func (s *structured) jobColor(job string) string {
	if col, ok := s.colors[job]; ok {
		return col
	}
	h := fnv.New32a()
	h.Write([]byte(job))
	return jobColors[h.Sum32()%uint32(len(jobColors))]
}

func (s *structured) appendEvent(b []byte, e *event.Event) []byte {
	if e.Event == event.RunStart {
		return fmt.Appendf(b, "%s run %s started (%s)\n", s.p.paint(ansiDim, e.Time.Format("15:04:05")), e.Message, e.Run)
	}
	kind, msg := describe(e, true, s.p)
	switch kind {
	case lineNone:
		return b
	case lineJob:
		b = s.appendPrefix(b, e)
	}
	return append(append(b, msg...), '\n')
}

// appendPrefix appends the time, job and step of a line about e.
func (s *structured) appendPrefix(b []byte, e *event.Event) []byte {
	if !s.p {
		b = s.clock.append(b, e.Time)
		return append(appendJobStep(append(b, ' '), e), " │ "...)
	}
	b = s.clock.append(append(b, ansiDim...), e.Time)
	b = append(append(b, ansiReset...), ' ')
	b = appendJobStep(append(b, s.jobColor(e.Job)...), e)
	return append(b, ansiReset+ansiDim+" │ "+ansiReset...)
}

func (s *structured) appendHead(b []byte, line *event.Event) ([]byte, bool) {
	b = s.appendPrefix(b, line)
	s.post = ""
	if line.Stream == "stderr" && s.p {
		b, s.post = append(b, ansiYel...), ansiReset
	}
	return b, true
}

func (s *structured) appendLine(b, head, line []byte) []byte {
	return append(append(append(append(b, head...), line[:len(line)-1]...), s.post...), '\n')
}
