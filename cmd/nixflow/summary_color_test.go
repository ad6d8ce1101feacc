package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/event"
)

// TestSummaryResultColours checks that the RESULT column is coloured on a
// terminal (green success, red failure) and that the table stays aligned.
func TestSummaryResultColours(t *testing.T) {
	res := &actions.Result{RunID: "r", Name: "w", Jobs: []*actions.JobResult{
		{Job: "build", Status: event.StatusSuccess, Steps: []*actions.StepResult{{Step: "s", Status: event.StatusSuccess, Attempts: 1}}},
		{Job: "test", Status: event.StatusFailure, Domain: actions.DomainStep, Steps: []*actions.StepResult{{Step: "s", Status: event.StatusFailure, Attempts: 1}}},
		{Job: "deploy", Status: event.StatusSkipped},
	}}
	var out bytes.Buffer
	writeSummary(&out, res, actions.NewMasker(), true)
	lines := strings.Split(out.String(), "\n")
	if !strings.Contains(lines[2], "\x1b[32msuccess") || !strings.Contains(lines[3], "\x1b[31mfailure (step)") {
		t.Fatalf("result cells not coloured:\n%q", out.String())
	}
	// DURATION starts at the same column on every row once escapes are gone.
	third := regexp.MustCompile(`^\S+\s+\S+(?: \(\S+\))?\s+`)
	col := -1
	for _, l := range lines[1:5] {
		plain := stripANSI(l)
		i := len(third.FindString(plain))
		if col >= 0 && i != col {
			t.Errorf("misaligned row %q (column %d, want %d)", plain, i, col)
		}
		col = i
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
