package actions

import "testing"

func TestShortID(t *testing.T) {
	for _, c := range []struct{ name, run, want string }{
		{"ci", "20261130-030450.577-a9a5fe", "ci-a9a5fe"},
		{"a-very-long-workflow-name", "20261130-030450.577-a9a5fe", "a-very-long-wor-a9a5fe"},
		{"trailing-dash--x", "r-1", "trailing-dash-1"},
	} {
		if got := shortID(c.name, c.run); got != c.want {
			t.Errorf("shortID(%q, %q) = %q, want %q", c.name, c.run, got, c.want)
		}
	}
}
