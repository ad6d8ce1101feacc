package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/nixflow/nixflow/compiler"
)

// TestWritePlanJSON: the plan written a job at a time is byte for byte
// what json.Encoder writes, for the compiler's valid golden graphs (env,
// providers, conditions, retries, executors, HTML characters to escape)
// and the example pipeline.
func TestWritePlanJSON(t *testing.T) {
	graphs := map[string][]byte{}
	files, err := filepath.Glob("../../compiler/testdata/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		a, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, af := range a.Files {
			if af.Name == "graph.json" {
				graphs[filepath.Base(f)] = af.Data
			}
		}
	}
	data, err := os.ReadFile("../../examples/pipeline.json")
	if err != nil {
		t.Fatal(err)
	}
	graphs["pipeline.json"] = data
	graphs["escapes"] = []byte(`{"version": 1, "name": "<a & b>",
 "env": {"K": "\u2028 <x> \"q\""}, "warnings": ["w1"],
 "jobs": {"one": {"steps": [{"name": "s", "bash": "echo '<&>'"}]},
          "two": {"needs": ["one"], "steps": [{"bash": "true"}]}}}`)
	compiled := 0
	for name, g := range graphs {
		plan, err := compiler.Compile(name, g)
		if err != nil {
			continue // a graph with errors: no plan
		}
		compiled++
		var want, got bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		if err := enc.Encode(plan); err != nil {
			t.Fatal(err)
		}
		if err := writePlanJSON(&got, plan); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want.String(), got.String()); diff != "" {
			t.Errorf("%s (-encoder +writePlanJSON):\n%s", name, diff)
		}
	}
	if compiled < 5 {
		t.Fatalf("only %d graphs compiled", compiled)
	}
}
