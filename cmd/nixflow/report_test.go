package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportPipeline runs the README's pipeline with --report and
// --trace, as docs/report.md shows it: both files are written, the page
// names every job and marks the critical path, and the trace is trace
// event JSON with a track per job.
func TestReportPipeline(t *testing.T) {
	root := repoRoot(t)
	exampleEnv(t, root)
	dir := t.TempDir()
	html, trace := filepath.Join(dir, "r.html"), filepath.Join(dir, "t.json")
	var out bytes.Buffer
	if code := Main([]string{"run", "--log-format", "simple", "examples/pipeline.json", "--report", html, "--trace", trace},
		bytes.NewReader(nil), &out, &out); code != ExitOK {
		t.Fatalf("exit status %d; output:\n%s", code, out.String())
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TraceEvents []struct {
			Name string         `json:"name"`
			Ph   string         `json:"ph"`
			Args map[string]any `json:"args"`
		} `json:"traceEvents"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("trace: %v", err)
	}
	tracks := map[string]bool{}
	for _, e := range doc.TraceEvents {
		if e.Ph == "M" && e.Name == "thread_name" {
			tracks[e.Args["name"].(string)] = true
		}
	}
	for _, job := range []string{"lint", "version", "build", "check", "package", "notify"} {
		if !strings.Contains(string(page), ">"+job+"<") {
			t.Errorf("the report does not name job %q", job)
		}
		if !tracks[job] {
			t.Errorf("the trace has no track for job %q", job)
		}
	}
	if !strings.Contains(string(page), `id="critical-path"`) || !strings.Contains(string(page), " critical\"") {
		t.Error("the report marks no critical path")
	}
}
