package output

import (
	"bytes"
	"testing"
	"time"

	"github.com/nixflow/nixflow/event"
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
