package actions

import (
	"sort"
	"strings"

	"github.com/nixflow/nixflow/compiler"
)

// envMap is an environment under construction; later layers overwrite
// earlier ones.
type envMap map[string]string

func (e envMap) set(m map[string]string) {
	for k, v := range m {
		e[k] = v
	}
}

func (e envMap) clone() envMap {
	c := make(envMap, len(e)+8)
	for k, v := range e {
		c[k] = v
	}
	return c
}

// list returns KEY=VALUE pairs, sorted for reproducibility.
func (e envMap) list() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func fromList(list []string) envMap {
	e := make(envMap, len(list))
	for _, kv := range list {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			e[k] = v
		}
	}
	return e
}

// declaredNames lists every variable name a workflow declares: in env at any
// level, as static provider values, or as required names. nixflow's own
// environment overrides exactly these.
func declaredNames(p *compiler.Plan) map[string]bool {
	names := map[string]bool{}
	addProviders := func(ps []compiler.Provider) {
		for _, pr := range ps {
			for k := range pr.Values {
				names[k] = true
			}
			for _, k := range pr.Names {
				names[k] = true
			}
		}
	}
	for k := range p.Env {
		names[k] = true
	}
	addProviders(p.EnvFrom)
	for _, j := range p.Jobs {
		for k := range j.Env {
			names[k] = true
		}
		addProviders(j.EnvFrom)
		for _, s := range j.Steps {
			for k := range s.Env {
				names[k] = true
			}
		}
	}
	return names
}

// Overrides are the runtime overrides of a run, highest precedence first
// applied last: declared names from nixflow's environment, then --env-file
// values, then --env values.
type Overrides struct {
	// FromEnvironment holds nixflow's own environment variables whose names
	// the workflow declares.
	FromEnvironment map[string]string
	// Files and Flags hold --env-file and --env values, in that order of
	// precedence.
	Files map[string]string
	Flags map[string]string
}

func (o Overrides) apply(e envMap) {
	e.set(o.FromEnvironment)
	e.set(o.Files)
	e.set(o.Flags)
}

// ResolveOverrides picks, from nixflow's environment, the variables the
// plan declares, and combines them with --env-file and --env values.
func ResolveOverrides(p *compiler.Plan, environ []string, files, flags map[string]string) Overrides {
	declared := declaredNames(p)
	from := map[string]string{}
	for k, v := range fromList(environ) {
		if declared[k] {
			from[k] = v
		}
	}
	return Overrides{FromEnvironment: from, Files: files, Flags: flags}
}
