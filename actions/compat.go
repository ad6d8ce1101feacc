package actions

import (
	"fmt"
	"path/filepath"
	"strings"
)

// This file holds what workflows written for nixactions rely on at run
// time: the control files exist when the job starts, and the variables
// their steps read are set.

// addCompatEnv sets, besides nixflow's own NIXFLOW_* variables, the
// variables of nixactions' runtime: WORKFLOW_NAME, WORKFLOW_ID (the run's
// id), WORKFLOW_SHORT_ID (a shorter id, unique to the run, for names with
// a length limit such as a pod's) and JOB_DIR (the job's workspace).
// A value the workflow declares wins, as it does in nixactions, where
// these are exported before the job's environment.
func (jr *jobRun) addCompatEnv(env envMap) {
	for k, v := range map[string]string{
		"WORKFLOW_NAME":     jr.e.plan.Name,
		"WORKFLOW_ID":       jr.e.opts.RunID,
		"WORKFLOW_SHORT_ID": shortID(jr.e.plan.Name, jr.e.opts.RunID),
		"JOB_DIR":           jr.ws.Dir(),
	} {
		if _, declared := env[k]; !declared {
			env[k] = v
		}
	}
}

// shortID is the workflow's name cut to 15 characters, then the random
// end of the run id: short enough for Kubernetes names, unique to the
// run as long as run ids are.
func shortID(name, runID string) string {
	if len(name) > 15 {
		name = name[:15]
	}
	tail := runID
	if i := strings.LastIndexByte(runID, '-'); i >= 0 {
		tail = runID[i+1:]
	}
	return strings.Trim(name, "-") + "-" + tail
}

// controlPrologue opens every step's script: it creates JOB_ENV,
// JOB_PATH and JOB_OUTPUT (appending nothing) so that they exist from the
// job's first step on, and `[ -f "$JOB_ENV" ]` holds as with GitHub's
// GITHUB_ENV, at the cost of no process. It stays on the script's first
// line, so that bash's line numbers in errors are the script's own.
const controlPrologue = `: >>"$JOB_ENV" >>"$JOB_PATH" >>"$JOB_OUTPUT"; `

// realiseProviders builds what providers (workflow's and jobs') read that
// is not in the store yet (exec programs, files made by a derivation),
// before any provider runs.
func (e *engine) realiseProviders() error {
	var drvs []string
	seen := map[string]bool{}
	add := func(ps []compilerProvider) {
		for _, p := range ps {
			if p.Drv == "" || seen[p.Drv] || exists(p.Path) {
				continue
			}
			seen[p.Drv] = true
			drvs = append(drvs, p.Drv)
		}
	}
	add(e.plan.EnvFrom)
	for _, j := range e.plan.Jobs {
		add(j.EnvFrom)
	}
	if len(drvs) == 0 {
		return nil
	}
	if e.opts.Realise == nil {
		return fmt.Errorf("providers not built and no way to build them here: %s", strings.Join(drvs, ", "))
	}
	root := filepath.Join(e.opts.RunDir, "gcroots", "providers", "provider")
	return e.opts.Realise(e.abort, drvs, root, func(line string) { e.log.Debug("build provider", "line", line) })
}
