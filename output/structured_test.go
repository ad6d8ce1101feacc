package output

import (
	"fmt"
	"testing"
)

// TestJobColors checks that job names never take the colours of success,
// failure or warnings, and that jobs coloured in plan order do not share
// one while there are colours enough.
func TestJobColors(t *testing.T) {
	c := newStructured(true)
	var names []string
	for i := range len(jobColors) {
		names = append(names, fmt.Sprintf("job-%d", i))
	}
	c.setJobs(names)
	seen := map[string]string{}
	for _, n := range names {
		col := c.jobColor(n)
		switch col {
		case ansiGreen, ansiRed, ansiYel:
			t.Errorf("job %s has colour %q, kept for results", n, col)
		}
		if other, ok := seen[col]; ok {
			t.Errorf("jobs %s and %s share colour %q", other, n, col)
		}
		seen[col] = n
	}
}
