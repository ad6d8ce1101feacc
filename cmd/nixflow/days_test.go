package main

import (
	"testing"
	"time"
)

func TestParseDays(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1d12h": 36 * time.Hour,
		"168h": 168 * time.Hour, "90m": 90 * time.Minute, "1w2d": 9 * 24 * time.Hour,
		"36500d": 36500 * 24 * time.Hour,
	} {
		got, err := parseDays(in)
		if err != nil || got != want {
			t.Errorf("parseDays(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	// The last ones would wrap around to minutes, or below zero.
	for _, bad := range []string{"", "d", "7x", "-1d", "1d-2h", "w3", "213504d", "106752d", "1769033w", "36500d1000000h"} {
		if _, err := parseDays(bad); err == nil {
			t.Errorf("parseDays(%q): no error", bad)
		}
	}
}
