package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/nixflow/nixflow/compiler"
)

// writeJobDetails prints what plan --verbose adds to a job: the executor's
// settings and the names (never the values) of its environment.
func writeJobDetails(w io.Writer, p *compiler.Plan, j *compiler.Job) {
	fmt.Fprintf(w, "      executor: %s", executorLabel(j.Executor))
	if !j.Executor.CopyRepo {
		fmt.Fprint(w, ", starts empty (copyRepo = false)")
	} else {
		fmt.Fprint(w, ", starts from a copy of the repository")
	}
	fmt.Fprintln(w)
	names := slices.Sorted(maps.Keys(p.Env))
	names = append(names, slices.Sorted(maps.Keys(j.Env))...)
	if len(names) > 0 {
		fmt.Fprintf(w, "      env: %s\n", strings.Join(dedupe(names), " "))
	}
	for _, pr := range append(slices.Clone(p.EnvFrom), j.EnvFrom...) {
		fmt.Fprintf(w, "      envFrom: %s\n", providerLabel(pr))
	}
}

// writeStepDetails prints a step's command, env names and deps.
func writeStepDetails(w io.Writer, s *compiler.Step) {
	for _, line := range strings.Split(strings.TrimRight(s.Bash, "\n"), "\n") {
		fmt.Fprintf(w, "       $ %s\n", line)
	}
	if len(s.Env) > 0 {
		fmt.Fprintf(w, "       env: %s\n", strings.Join(slices.Sorted(maps.Keys(s.Env)), " "))
	}
	for _, d := range s.Deps {
		fmt.Fprintf(w, "       dep: %s\n", d.Path)
	}
}

func providerLabel(p compiler.Provider) string {
	switch p.Type {
	case "static":
		return "static " + strings.Join(slices.Sorted(maps.Keys(p.Values)), " ")
	case "file", "sops":
		return p.Type + " " + p.Path
	case "command":
		return "command " + fmt.Sprintf("%q", p.Command)
	case "required":
		return "required " + strings.Join(p.Names, " ")
	}
	return p.Type
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
