package actions

import "strings"

// maskResult masks every text of a run's result that a step or a provider
// may have put words in (reasons, last lines), with every secret known at
// the end of the run: the summary, result.json and CI annotations are
// built from it, and a secret announced after a reason was worded is
// still caught.
func maskResult(res *Result, m *Masker) {
	res.Err = m.Mask(res.Err)
	for _, j := range res.Jobs {
		j.Reason = m.Mask(j.Reason)
		for _, s := range j.Steps {
			s.Reason = m.Mask(s.Reason)
			for i, line := range s.Tail {
				s.Tail[i] = m.Mask(line)
			}
		}
	}
}

// finalSecrets collects into acc the final values of secret names: a
// provider's secret overridden by --env, --env-file or nixflow's
// environment stays a secret, masked by name whichever layer gives its
// value; so are the values of required names (how CI passes tokens).
func finalSecrets(acc map[string]string, env envMap, names ...[]string) {
	for _, list := range names {
		for _, k := range list {
			if v, ok := env[k]; ok && v != "" {
				acc[k+"\x00"+v] = v
			}
		}
	}
}

// addFinalSecrets masks the values finalSecrets collected, warning once
// per name about a value too short to mask unless a provider's own value
// was warned about already.
func (e *engine) addFinalSecrets(acc map[string]string) {
	named := map[string]string{}
	for key, v := range acc {
		name, _, _ := strings.Cut(key, "\x00")
		if e.opts.Masker.has(v) {
			continue
		}
		if len(v) < minSecretLen && e.workEnv != nil && e.workEnv.secrets[name] == v {
			continue
		}
		named[name] = v
	}
	e.addNamedSecrets(named)
}

// noteSecretNames records secret names for maskExported.
func (e *engine) noteSecretNames(lists ...[]string) {
	if e.secretNames == nil {
		e.secretNames = map[string]bool{}
	}
	for _, l := range lists {
		for _, k := range l {
			e.secretNames[k] = true
		}
	}
}

// maskExported masks a value a step exported through JOB_ENV under a
// secret name: the name makes it a secret, whichever layer sets it.
func (e *engine) maskExported(name, value string) {
	if e.secretNames[name] && value != "" && !e.opts.Masker.has(value) {
		e.addSecret("secret "+name, value)
	}
}
