package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/syntax"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/event"
)

// projectFile, in a run's directory, names the project the run was for:
// the directory its jobs started from.
const projectFile = "project"

func writeProject(runDir, repo string) error {
	if err := os.WriteFile(filepath.Join(runDir, projectFile), []byte(repo+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the project of the run: %w", err)
	}
	return nil
}

// runProject is the project a run was for, or "" for runs made before
// nixflow recorded it.
func runProject(runDir string) string {
	data, err := os.ReadFile(filepath.Join(runDir, projectFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// currentProjects are the projects the current directory may belong to:
// its git work tree; outside git, the directory of the workflow nixflow
// run finds from here (a ci.nix or flake.nix above it), and the
// directory itself. The first is the one to name.
func currentProjects() []string {
	wd, err := os.Getwd()
	if err != nil {
		return nil
	}
	if top := gitTop(wd); top != "" {
		return []string{top}
	}
	if src, dir := findWorkflow(os.Getenv("HOME")); src != "" && dir != wd {
		return []string{dir, wd}
	}
	return []string{wd}
}

// lastRunHere is the newest of ids (oldest first) whose project is the
// current one: `logs last` in a project means its last run, never another
// project's. A run that recorded no project (made by a nixflow or a
// compiled script before runs recorded it) may be this project's and
// counts as such. With none, the error names the newest run and its
// project.
func lastRunHere(dir string, ids []string) (string, error) {
	here := currentProjects()
	for i := len(ids) - 1; i >= 0; i-- {
		if p := runProject(filepath.Join(dir, ids[i])); p == "" || slices.Contains(here, p) {
			return ids[i], nil
		}
	}
	newest := ids[len(ids)-1]
	other := runProject(filepath.Join(dir, newest))
	name := ""
	if len(here) > 0 {
		name = here[0]
	}
	return "", usageError(fmt.Errorf("no run of this project (%s) yet", name),
		"run its workflow first: nixflow run",
		fmt.Sprintf("the newest run, %s, was for %s: give its id to see it (nixflow runs lists every run)", newest, other))
}

// unselectedFile, in a run's directory, lists the jobs of the workflow
// that --job left out, one a line (absent when it chose all).
const unselectedFile = "unselected"

func writeUnselected(runDir string, jobs []string) error {
	if len(jobs) == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(runDir, unselectedFile), []byte(strings.Join(jobs, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the jobs left out of the run: %w", err)
	}
	return nil
}

// wasUnselected reports whether job belongs to the workflow of a run but
// --job left it out.
func wasUnselected(runDir, job string) bool {
	data, err := os.ReadFile(filepath.Join(runDir, unselectedFile))
	if err != nil {
		return false
	}
	return slices.Contains(strings.Split(strings.TrimSpace(string(data)), "\n"), job)
}

// shortProject writes a project path for the runs table: under the home
// directory as ~/..., else as it is.
func shortProject(p, home string) string {
	if p == "" {
		return "-"
	}
	if home != "" {
		if rel, err := filepath.Rel(home, p); err == nil && filepath.IsLocal(rel) {
			return "~/" + rel
		}
	}
	return p
}

// notRunReason says why a job of a run that ended has no log: its
// result, from the run's result.json. ended is false when the run has
// no result: it runs still, or was killed.
func notRunReason(runDir, job string) (why string, ended bool) {
	res, err := actions.ReadResult(runDir)
	if err != nil {
		return "", false
	}
	for _, j := range res.Jobs {
		if j.Job != job {
			continue
		}
		switch {
		case j.Reason != "":
			return string(j.Status) + ": " + j.Reason, true
		case j.Status == event.StatusSkipped:
			return "skipped", true
		default:
			return string(j.Status), true
		}
	}
	return "it was not selected", true
}

// envName is what --env accepts as a variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// shellQuote writes a command line as a shell would take it, for logs.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if q, err := syntax.Quote(a, syntax.LangBash); err == nil {
			out[i] = q
		} else {
			out[i] = strconv.Quote(a)
		}
	}
	return strings.Join(out, " ")
}
