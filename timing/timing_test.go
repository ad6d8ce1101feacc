package timing

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestJSON(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		json string
	}{
		{0, `"0s"`},
		{250 * time.Millisecond, `"250ms"`},
		{1500 * time.Microsecond, `"1.5ms"`},
		{1508 * time.Millisecond, `"1.508s"`},
		{65 * time.Second, `"1m5s"`},
		{90 * time.Minute, `"1h30m0s"`},
	} {
		got, err := json.Marshal(Duration(tt.d))
		if err != nil || string(got) != tt.json {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.d, got, err, tt.json)
		}
		var back Duration
		if err := json.Unmarshal(got, &back); err != nil || back.Std() != tt.d {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", got, back, err, tt.d)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`600`:     10 * time.Minute,
		`0.5`:     500 * time.Millisecond,
		`"1m30s"`: 90 * time.Second,
		`"-2s"`:   -2 * time.Second,
	} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.Std() != want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", in, d, err, want)
		}
	}
	for in, want := range map[string]string{
		`"3x"`:  `unknown unit "x"`,
		`true`:  `not a duration`,
		`1e300`: `out of range`,
		`{}`:    `not a duration`,
	} {
		var d Duration
		err := json.Unmarshal([]byte(in), &d)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Unmarshal(%s) = %v, %v; want an error with %q", in, d, err, want)
		}
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                         "0s",
		-time.Second:              "0s",
		1234567 * time.Nanosecond: "1ms",
		1234 * time.Millisecond:   "1.23s",
		61500 * time.Millisecond:  "1m2s",
	} {
		if got := Human(d); got != want {
			t.Errorf("Human(%v) = %q, want %q", d, got, want)
		}
	}
}
