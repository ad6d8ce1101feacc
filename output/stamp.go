package output

import "time"

// The lines of one read of a step's output share their time (see the
// line writer in package actions), so the formats format a time once for
// all of them.

// stamp caches the formatting of the last time it was given.
type stamp struct {
	t      time.Time
	b      []byte
	layout string
	utc    bool
}

// append appends t formatted with the layout.
func (s *stamp) append(b []byte, t time.Time) []byte {
	if s.b == nil || !t.Equal(s.t) || t.Location() != s.t.Location() {
		s.t = t
		if s.utc {
			t = t.UTC()
		}
		s.b = t.AppendFormat(s.b[:0], s.layout)
	}
	return append(b, s.b...)
}
