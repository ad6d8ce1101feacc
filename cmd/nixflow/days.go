package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// daysDuration is a duration flag that also takes days and weeks (7d, 2w,
// 1d12h), as people write ages; Go's own units work too (168h, 90m).
type daysDuration struct{ d *time.Duration }

func (v daysDuration) String() string {
	if v.d == nil || *v.d == 0 {
		return "0"
	}
	return v.d.String()
}

func (v daysDuration) Type() string { return "duration" }

func (v daysDuration) Set(s string) error {
	d, err := parseDays(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

// maxAge bounds the durations parseDays reads: a longer one would wrap
// around (213504d is about 25 minutes in a time.Duration), and nothing
// nixflow keeps is that old.
const maxAge = 100 * 365 * 24 * time.Hour

func tooLong(s string) error {
	return fmt.Errorf("invalid duration %q: longer than 100 years", s)
}

// parseDays reads a duration with optional leading weeks and days.
func parseDays(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("invalid duration %q (e.g. 7d, 2w, 36h, 90m)", s)
	}
	rest := s
	var total time.Duration
	for _, unit := range []struct {
		suffix string
		d      time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}} {
		i := strings.Index(rest, unit.suffix)
		if i < 0 {
			continue
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q (e.g. 7d, 2w, 36h, 90m)", s)
		}
		if n > int(maxAge/unit.d) || total > maxAge-time.Duration(n)*unit.d {
			return 0, tooLong(s)
		}
		total += time.Duration(n) * unit.d
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("invalid duration %q (e.g. 7d, 2w, 36h, 90m)", s)
		}
		if total > maxAge-d {
			return 0, tooLong(s)
		}
		total += d
	}
	return total, nil
}
