package compiler

import "testing"

func TestJSONPathString(t *testing.T) {
	var doc jsonPath
	jobs := doc.field("jobs")
	job := jobs.field("build")
	steps := job.field("steps")
	step := steps.elem(0)
	env := step.field("env")
	odd := env.field("a b")
	top := doc.field(`x"y`)
	first := doc.elem(3)
	detached := step.detached()
	for _, tc := range []struct {
		p    jsonPath
		want string
	}{
		{doc, ""},
		{jobs, "jobs"},
		{env, "jobs.build.steps[0].env"},
		{odd, `jobs.build.steps[0].env["a b"]`},
		{env.field(""), `jobs.build.steps[0].env[""]`},
		{env.field("1x"), `jobs.build.steps[0].env["1x"]`},
		{env.field("x-1_Y"), "jobs.build.steps[0].env.x-1_Y"},
		{top, `["x\"y"]`},
		{first, "[3]"},
		{detached.field("name"), "jobs.build.steps[0].name"},
		{pathOf("jobs", "a.b", "needs"), `jobs["a.b"].needs`},
		{pathOf(), ""},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
