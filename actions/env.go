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
// Names every session has (PATH, HOME, LANG, ...: Ambient) are not
// taken: they describe where nixflow runs, not a value given to the run,
// and would always win over the workflow's own.
func ResolveOverrides(p *compiler.Plan, environ []string, files, flags map[string]string) Overrides {
	declared := p.DeclaredNames()
	from := map[string]string{}
	for k, v := range fromList(environ) {
		if declared[k] && !Ambient(k) {
			from[k] = v
		}
	}
	return Overrides{FromEnvironment: from, Files: files, Flags: flags}
}

// ambientNames are the variables every login session sets; Ambient.
var ambientNames = map[string]bool{
	"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "SHELL": true,
	"PWD": true, "OLDPWD": true, "SHLVL": true, "HOSTNAME": true, "TERM": true,
	"TMPDIR": true, "LANG": true, "LANGUAGE": true, "_": true,
}

// Ambient reports whether name is one that every session sets (PATH,
// HOME, LANG, LC_ALL, ...): nixflow's own value of it never overrides
// the workflow's (--env does). The compiled script has the same list
// (runtime.bash, nf_overrides).
func Ambient(name string) bool {
	return ambientNames[name] || strings.HasPrefix(name, "LC_")
}
