package actions

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixflow/nixflow/executors"
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

// createControlFiles creates JOB_ENV, JOB_PATH and JOB_OUTPUT empty before
// the first step, so that `[ -f "$JOB_ENV" ]` holds as with GitHub's
// GITHUB_ENV. It runs one short command in the workspace.
func (jr *jobRun) createControlFiles() error {
	ctx, cancel := context.WithTimeout(jr.interrupt(), time.Minute)
	defer cancel()
	tmp := jr.ws.TempDir()
	files := []string{path.Join(tmp, fileEnv), path.Join(tmp, filePath), path.Join(tmp, fileOutput)}
	var stderr strings.Builder
	res, err := jr.ws.Run(ctx, executors.Command{
		Argv:   append([]string{"bash", "--noprofile", "--norc", "-c", `for f; do : >> "$f"; done`, "nixflow-control-files"}, files...),
		Stdout: &stderr, Stderr: &stderr,
	})
	switch {
	case err != nil:
		return fmt.Errorf("create the control files: %w", err)
	case res.Stopped:
		return ctx.Err()
	case res.ExitCode != 0:
		return fmt.Errorf("create the control files: exit status %d: %s", res.ExitCode, strings.TrimSpace(stderr.String()))
	}
	return nil
}

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
