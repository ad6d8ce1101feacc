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
	declared := p.DeclaredNames()
	from := map[string]string{}
	for k, v := range fromList(environ) {
		if declared[k] {
			from[k] = v
		}
	}
	return Overrides{FromEnvironment: from, Files: files, Flags: flags}
}
