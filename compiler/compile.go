package compiler

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/nixflow/nixflow/dag"
)

// Compile decodes and validates a JSON job graph. file names the source in
// error messages. On bad input it returns an ErrorList with every problem,
// sorted by position.
func Compile(file string, data []byte) (*Plan, error) {
	return compile(file, data, false)
}

func compile(file string, data []byte, generated bool) (*Plan, error) {
	d := &decoder{file: file, data: data}
	root, parser, err := parseWorkflow(data)
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			d.errorf(nil, se.offset, jsonPath{}, "invalid JSON: %s", se.msg)
			return nil, d.errs
		}
		return nil, err
	}
	d.parser = parser
	w := d.workflow(root)
	d.parser = nil
	plan := w.plan
	if len(d.errs) == 0 || len(plan.byName) > 0 {
		d.checkGraph(w)
	}
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	d.warns.sort()
	for _, w := range d.warns {
		if generated {
			w.Line, w.Col = 0, 0
		}
		plan.Warnings = append(plan.Warnings, w.Error())
	}
	return plan, nil
}

// CompileGenerated compiles a graph that a tool generated from source (a
// Nix workflow): line and column in the generated text mean nothing to the
// user, so errors name the source and the JSON path only.
func CompileGenerated(source string, data []byte) (*Plan, error) {
	plan, err := compile(source, data, true)
	var list ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			e.Line, e.Col = 0, 0
		}
	}
	return plan, err
}

// checkGraph checks what spans jobs: needs, cycles and artifacts, then
// orders the jobs and computes their levels.
func (d *decoder) checkGraph(w *workflow) {
	plan := w.plan
	names := make([]string, 0, len(plan.byName))
	for name := range plan.byName {
		names = append(names, name)
	}
	sort.Strings(names)

	deps := make(map[string][]string, len(names))
	graphOK := true
	for _, name := range names {
		j := plan.byName[name]
		for i, need := range j.Needs {
			if need != name && plan.byName[need] != nil {
				continue
			}
			e := w.jobAt[name].need[i]
			needs := pathOf("jobs", name, "needs")
			np := needs.elem(e.index)
			if need == name {
				d.errorf(nil, e.offset, np, "job %q needs itself", name)
			} else {
				d.errorf(nil, e.offset, np, "unknown job %q%s", need, didYouMean(need, names))
			}
			graphOK = false
		}
		// dag.New keeps none of it; when a need is wrong, no graph is made.
		if len(j.Needs) > 0 {
			deps[name] = j.Needs
		}
	}
	if !graphOK {
		return
	}
	g, err := dag.New(names, deps)
	if err != nil {
		var ce *dag.CycleError
		if errors.As(err, &ce) && len(ce.Path) > 1 {
			first := ce.Path[0]
			d.errorf(nil, w.jobAt[first].needs, pathOf("jobs", first, "needs"), "cycle: %s", strings.Join(ce.Path, " -> "))
			return
		}
		d.at(nil, pathOf("jobs"), "%v", err)
		return
	}
	// Jobs are listed level by level, by name within a level: a
	// topological order that reads well in plans and summaries.
	plan.Levels = g.Levels()
	plan.Jobs = make([]*Job, 0, len(names))
	for lvl, names := range plan.Levels {
		for _, name := range names {
			plan.byName[name].Level = lvl
			plan.Jobs = append(plan.Jobs, plan.byName[name])
		}
	}
	d.checkArtifacts(w, g)
}

// checkArtifacts checks that artifact names are unique and that a job only
// reads artifacts of jobs it transitively needs.
func (d *decoder) checkArtifacts(w *workflow, g *dag.Graph) {
	plan := w.plan
	producer := map[string]string{}
	for _, j := range plan.Jobs {
		for _, o := range j.Outputs {
			if prev, dup := producer[o.Name]; dup {
				d.errorf(nil, w.jobAt[j.Name].outputs[o.Name], pathOf("jobs", j.Name, "outputs", o.Name),
					"artifact %q is already an output of job %q (artifact names are unique in a workflow)", o.Name, prev)
				continue
			}
			producer[o.Name] = j.Name
		}
	}
	all := make([]string, 0, len(producer))
	for name := range producer {
		all = append(all, name)
	}
	sort.Strings(all)
	for _, j := range plan.Jobs {
		if len(j.Inputs) == 0 {
			continue
		}
		ancestors := map[string]bool{}
		for _, a := range g.Ancestors(j.Name) {
			ancestors[a] = true
		}
		inputs := w.jobAt[j.Name].inputs
		for i, in := range j.Inputs {
			inputsPath := pathOf("jobs", j.Name, "inputs")
			p := inputsPath.elem(inputs[i].index)
			at := inputs[i].offset
			from, ok := producer[in.Name]
			switch {
			case !ok:
				d.errorf(nil, at, p, "unknown artifact %q%s", in.Name, didYouMean(in.Name, all))
			case from == j.Name:
				d.errorf(nil, at, p, "job %q reads its own artifact %q", j.Name, in.Name)
			case !ancestors[from]:
				d.errorf(nil, at, p, "artifact %q comes from job %q, which job %q does not need (add it to needs)", in.Name, from, j.Name)
			}
		}
	}
}

// Select returns a plan reduced to the named jobs and everything they
// transitively need. Unknown names are reported all at once.
//
// A name may be a glob (`test-*`, path.Match's syntax) or the name given
// to mkMatrixJobs: a name no job has selects the jobs named NAME-...
func Select(p *Plan, jobs []string) (*Plan, error) {
	if len(jobs) == 0 {
		return p, nil
	}
	names := make([]string, 0, len(p.Jobs))
	for _, j := range p.Jobs {
		names = append(names, j.Name)
	}
	var problems []string
	keep := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if keep[n] {
			return
		}
		keep[n] = true
		for _, need := range p.byName[n].Needs {
			visit(need)
		}
	}
	for _, name := range jobs {
		matched := matchJobs(name, names)
		if len(matched) == 0 {
			problems = append(problems, fmt.Sprintf("unknown job %q%s", name, didYouMean(name, names)))
			continue
		}
		for _, m := range matched {
			visit(m)
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	out := &Plan{Name: p.Name, Env: p.Env, EnvFrom: p.EnvFrom, LogFormat: p.LogFormat, LogLevel: p.LogLevel, Warnings: p.Warnings, byName: map[string]*Job{},
		unselected: slices.Clip(p.unselected)}
	for _, j := range p.Jobs {
		if keep[j.Name] {
			out.Jobs = append(out.Jobs, j)
			out.byName[j.Name] = j
		} else {
			out.unselected = append(out.unselected, j)
		}
	}
	for _, level := range p.Levels {
		var l []string
		for _, n := range level {
			if keep[n] {
				l = append(l, n)
			}
		}
		if len(l) > 0 {
			out.Levels = append(out.Levels, l)
		}
	}
	return out, nil
}

// matchJobs returns the jobs a --job argument selects: the job of that
// name; else, for a glob, the jobs it matches; else the jobs of the matrix
// family of that name (NAME-...).
func matchJobs(name string, names []string) []string {
	if slices.Contains(names, name) {
		return []string{name}
	}
	var out []string
	if strings.ContainsAny(name, "*?[") {
		for _, n := range names {
			if ok, _ := path.Match(name, n); ok {
				out = append(out, n)
			}
		}
		return out
	}
	for _, n := range names {
		if strings.HasPrefix(n, name+"-") {
			out = append(out, n)
		}
	}
	return out
}
