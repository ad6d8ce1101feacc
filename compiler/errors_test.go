package compiler

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestErrorsNameSourceElement checks that the checks across jobs, which run
// on the decoded lists, name an array element by its index in the document
// and report it at its position, also when an earlier element was left out
// of the list for an error of its own.
func TestErrorsNameSourceElement(t *testing.T) {
	tests := []struct {
		name string
		jobs string // the document from its second line, in the jobs object
		want []string
	}{{
		name: "a need after a duplicate",
		jobs: `"p": {"steps": [{"bash": "true"}]},
 "c": {"needs": ["p", "p", "nope"], "steps": [{"bash": "true"}]}}}`,
		want: []string{
			`x.json:3:23: jobs.c.needs[1]: job "p" is needed twice`,
			`x.json:3:28: jobs.c.needs[2]: unknown job "nope"`,
		},
	}, {
		name: "a need after one that is not a string",
		jobs: `"c": {"needs": [1, {}, "c"], "steps": [{"bash": "true"}]}}}`,
		want: []string{
			`x.json:2:18: jobs.c.needs[0]: expected a string, got number`,
			`x.json:2:21: jobs.c.needs[1]: expected a string, got object`,
			`x.json:2:25: jobs.c.needs[2]: job "c" needs itself`,
		},
	}, {
		name: "an input after one that is not a name",
		jobs: `"p": {"outputs": {"art": "a"}, "steps": [{"bash": "true"}]},
 "c": {"needs": ["p"], "inputs": [7, "art", "nope"], "steps": [{"bash": "true"}]}}}`,
		want: []string{
			`x.json:3:35: jobs.c.inputs[0]: expected an artifact name or {name, path}, got number`,
			`x.json:3:45: jobs.c.inputs[2]: unknown artifact "nope"`,
		},
	}, {
		name: "an input after one without a name",
		jobs: `"c": {"inputs": [{"path": "q"}, {"name": 1}, "nope"], "steps": [{"bash": "true"}]}}}`,
		want: []string{
			`x.json:2:19: jobs.c.inputs[0]: missing required field "name"`,
			`x.json:2:43: jobs.c.inputs[1].name: expected a string, got number`,
			`x.json:2:47: jobs.c.inputs[2]: unknown artifact "nope"`,
		},
	}, {
		name: "inputs not needed or of the job itself after one with a bad name",
		jobs: `"p": {"outputs": {"art": "a"}, "steps": [{"bash": "true"}]},
 "c": {"inputs": [{"name": null}, "art", "own"], "outputs": {"own": "o"}, "steps": [{"bash": "true"}]}}}`,
		want: []string{
			`x.json:3:28: jobs.c.inputs[0].name: expected a string, got null`,
			`x.json:3:35: jobs.c.inputs[1]: artifact "art" comes from job "p", which job "c" does not need (add it to needs)`,
			`x.json:3:42: jobs.c.inputs[2]: job "c" reads its own artifact "own"`,
		},
	}, {
		name: "an output that another job has",
		jobs: `"p": {"outputs": {"art": "a"}, "steps": [{"bash": "true"}]},
 "q": {"outputs": {"-bad": "b", "x": "x", "art": "c"}, "steps": [{"bash": "true"}]}}}`,
		want: []string{
			`x.json:3:20: jobs.q.outputs["-bad"]: invalid artifact name "-bad" (letters, digits, '_', '-' and '.', not starting with '-' or '.')`,
			`x.json:3:43: jobs.q.outputs.art: artifact "art" is already an output of job "p" (artifact names are unique in a workflow)`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			graph := "{\"version\": 1, \"name\": \"x\", \"jobs\": {\n " + tt.jobs
			_, err := Compile("x.json", []byte(graph))
			if err == nil {
				t.Fatalf("Compile succeeded, want errors:\n%s", strings.Join(tt.want, "\n"))
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
