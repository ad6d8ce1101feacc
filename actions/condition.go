package actions

import (
	"fmt"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/event"
)

// jobExprHolds evaluates a status expression (`!cancelled()`,
// `failure() || cancelled()`) over the results of the jobs a job needs,
// with the status functions meaning what they mean alone.
func (e *engine) jobExprHolds(job *compiler.Job, cancelled bool) (bool, event.Status, string) {
	v := compiler.StatusValues{Cancelled: cancelled}
	if !cancelled {
		v.Success = true
		for _, n := range job.Needs {
			v.Success = v.Success && e.results[n].ok()
		}
		for _, a := range e.graph.Ancestors(job.Name) {
			if r := e.results[a]; r.Status == event.StatusFailure && !r.Allowed {
				v.Failure = true
			}
		}
	}
	if job.Condition.Holds(v) {
		return true, "", ""
	}
	if cancelled {
		return false, event.StatusCancelled, "run cancelled"
	}
	return false, event.StatusSkipped, fmt.Sprintf("condition %s is false", job.Condition.Expr)
}

// resultEnvName is the variable that tells a dependent how a job it needs
// ended: NEEDS_<JOB>_RESULT. An output named "result" (which workflows
// written before this variable existed may have) takes its place.
func resultEnvName(job string) string {
	return compiler.OutputEnvName(job, "RESULT")
}

// resultWord is a job's result as its dependents see it: success,
// failure, failure-allowed (failed with continueOnError), skipped or
// cancelled.
func (r *JobResult) resultWord() string {
	if r.Status == event.StatusFailure && r.Allowed {
		return "failure-allowed"
	}
	return string(r.Status)
}
