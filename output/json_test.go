package output

import (
	"bytes"
	"testing"
	"time"

	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/timing"
)

// FuzzJSONEncoder checks that the hand-written encoding of output events
// is byte for byte what encoding/json writes.
func FuzzJSONEncoder(f *testing.F) {
	f.Add("plain line", "job", "step", "stdout", int64(1700000000123456789))
	f.Add("<&> \"quoted\" \\ \t\b\f\x00\x1f \u2028\u2029 \xff\xfe é", "j", "", "stderr", int64(0))
	f.Add("", "", "", "", int64(-1))
	f.Fuzz(func(t *testing.T, msg, job, step, stream string, nanos int64) {
		j := newJSONFormat()
		for _, loc := range []*time.Location{time.UTC, time.FixedZone("x", 3600+1800)} {
			e := event.Event{Time: time.Unix(0, nanos).In(loc), Run: "run-1", Job: job, Step: step,
				Event: event.Output, Stream: stream, Message: msg}
			for range 2 { // the second time from the cached stamp
				got := j.appendEvent(nil, &e)
				want := appendJSON(nil, &e)
				if !bytes.Equal(got, want) {
					t.Fatalf("encoded\n%s\nwant\n%s", got, want)
				}
			}
		}
	})
}

// FuzzJSONEvents checks the same for events of every kind and field.
func FuzzJSONEvents(f *testing.F) {
	f.Add("job_end", "failure", "step \"x\" failed <&>", "host \u2028", int64(1700000000123456789), int64(1500000000), 2, 3, 1, true, true)
	f.Add("progress", "", "", "", int64(0), int64(0), 0, 0, 0, false, false)
	f.Add("step_end", "success", "", "", int64(253402300800000000), int64(-1), -1, 0, -7, false, true)
	f.Fuzz(func(t *testing.T, typ, result, reason, where string, nanos, dur int64, attempt, attempts, code int, allowed, hasCode bool) {
		j := newJSONFormat()
		e := event.Event{Time: time.Unix(0, nanos).UTC(), Run: "run-1", Job: "j", Event: event.Type(typ),
			Result: event.Status(result), Reason: reason, Where: where, Attempt: attempt, Attempts: attempts,
			Duration: timing.Duration(dur), Allowed: allowed}
		if hasCode {
			e.ExitCode = &code
		}
		got := j.appendEvent(nil, &e)
		want := appendJSON(nil, &e)
		if !bytes.Equal(got, want) {
			t.Fatalf("encoded\n%s\nwant\n%s", got, want)
		}
	})
}
