// Package timing is how nixflow writes durations: one JSON encoding for
// the plan (timeouts, retry delays), a run's result.json and its events,
// and one rounding for people (the console, the summary, the report).
package timing

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Duration is a time.Duration that JSON encodes as Go writes durations
// ("1m30s", "1.5s", "250ms"). Decoding takes such a string or a number of
// seconds ("timeout": 600), as the workflow schema allows.
type Duration time.Duration

// Std is d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, d.String()), nil
}

// UnmarshalJSON accepts a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("%s is not a duration: write a string (\"1m30s\") or a number of seconds", b)
	}
	if math.Abs(f) > float64(math.MaxInt64)/float64(time.Second) {
		return fmt.Errorf("duration of %s seconds is out of range", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// Human rounds d for people: milliseconds under a second, hundredths of
// a second under a minute, seconds above.
func Human(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
