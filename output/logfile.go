package output

import "github.com/nixflow/nixflow/event"

// logFile is the format of a job's log file: every line starts with its
// time in UTC (milliseconds) and its step; output lines hold the text as
// the step printed it (masked), events a "--" and their fields.
//
//	2026-11-30T06:01:02.005Z [compile] line one
//	2026-11-30T06:01:02.006Z [compile] (stderr) warning
//	2026-11-30T06:01:03.500Z [compile] -- step_end success
//
// nixflow logs and the CI sections read it back.
type logFile struct {
	clock stamp
}

func newLogFile() *logFile {
	return &logFile{clock: stamp{layout: "2006-01-02T15:04:05.000Z", utc: true}}
}

func (l *logFile) appendEvent(b []byte, e *event.Event) []byte {
	b, _ = l.appendHead(b, e)
	if e.Event == event.Output {
		return append(append(b, e.Message...), '\n')
	}
	b = append(append(b, "-- "...), e.Event...)
	result := string(e.Result)
	if e.Allowed {
		result += " (allowed)"
	}
	for _, s := range []string{result, e.Reason, e.Message} {
		if s != "" {
			b = append(append(b, ' '), s...)
		}
	}
	return append(b, '\n')
}

func (l *logFile) appendHead(b []byte, e *event.Event) ([]byte, bool) {
	b = l.clock.append(b, e.Time)
	b = append(b, ' ')
	if e.Step != "" {
		b = append(append(append(b, '['), e.Step...), "] "...)
	}
	if e.Event == event.Output && e.Stream == "stderr" {
		b = append(b, "(stderr) "...)
	}
	return b, true
}

func (l *logFile) appendLine(b, head, line []byte) []byte {
	return append(append(b, head...), line...)
}
