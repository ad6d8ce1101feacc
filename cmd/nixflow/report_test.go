package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/internal/chromiumtest"
)

// TestReportPipeline runs the README's pipeline with --report and
// --trace, as docs/report.md shows it: both files are written, the trace
// is trace event JSON with a track per job, and headless Chromium draws
// the page with every job on the timeline and the critical path marked.
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
	checkPipelineDOM(t, chromiumtest.Render(t, html, chromiumtest.Options{}).DOM)
}

// checkPipelineDOM checks the report of examples/pipeline.json as headless
// Chromium drew it: every job has its row on the timeline (its name, then
// its bar, green) and its row in the table; the critical path runs from
// whichever of lint and version ended last through build, check and
// package to notify (the job that ended last), and exactly its jobs are
// marked on the timeline, in the graph and in the table, with the edges
// between them.
func checkPipelineDOM(t *testing.T, dom string) {
	t.Helper()
	ids := map[string]string{}
	for _, m := range regexp.MustCompile(`<tr id="job-(\d+)" data-j="\d+" class="success"><td class="mono"><a href="#tl-\d+">([a-z]+)</a>`).FindAllStringSubmatch(dom, -1) {
		ids[m[2]] = m[1]
	}
	jobs := []string{"lint", "version", "build", "check", "package", "notify"}
	if len(ids) != len(jobs) {
		t.Fatalf("the jobs table has successful rows for %v, want %v", ids, jobs)
	}
	m := regexp.MustCompile(`<p id="critical-path">(.*?)</p>`).FindStringSubmatch(strings.ReplaceAll(dom, "\n", " "))
	if m == nil {
		t.Fatal("the report has no critical path")
	}
	var path []string
	for _, a := range regexp.MustCompile(`data-j="\d+" class="mono">([a-z]+)</a>`).FindAllStringSubmatch(m[1], -1) {
		path = append(path, a[1])
	}
	if len(path) != 5 || (path[0] != "lint" && path[0] != "version") || strings.Join(path[1:], " ") != "build check package notify" {
		t.Errorf("critical path %v, want lint or version, then build check package notify", path)
	}
	critical := map[string]bool{}
	for _, j := range path {
		critical[j] = true
	}
	for _, job := range jobs {
		id, ok := ids[job]
		if !ok {
			t.Errorf("job %q is not in the jobs table", job)
			continue
		}
		class := "success"
		if critical[job] {
			class = "success critical"
		}
		for what, re := range map[string]string{
			"timeline row": `<div class="row"><a class="name mono" href="#job-` + id + `" data-j="` + id + `" title="` + job + `">` + job + `</a><div class="track">(<div class="q"[^>]*></div>)?<a class="bar ` + class + `" id="tl-` + id + `"`,
			"graph node":   `<a class="node ` + class + `" href="#job-` + id + `" data-j="` + id + `">`,
		} {
			if !regexp.MustCompile(re).MatchString(dom) {
				t.Errorf("job %q: no %s matching %s", job, what, re)
			}
		}
		marked := regexp.MustCompile(`<a href="#tl-` + id + `">` + job + `</a> <b title="on the critical path">`).MatchString(dom)
		if marked != critical[job] {
			t.Errorf("job %q: marked on the critical path in the table: %v, want %v", job, marked, critical[job])
		}
	}
	if n := strings.Count(dom, `class="edge critical"`); n != len(path)-1 {
		t.Errorf("%d critical edges in the graph, want %d", n, len(path)-1)
	}
}
