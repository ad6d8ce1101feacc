// Package compiler is the only package that knows the JSON job graph
// (schema v1). It decodes a graph strictly, reports every problem at once
// with its position, and normalises the graph into a Plan: defaults
// resolved, retry and timeout layers merged, conditions parsed, levels
// computed. Everything downstream (the scheduler, the step runner, the
// executors, the bash backend) works from the Plan and never from JSON.
package compiler

import (
	"slices"
	"strings"
	"time"

	"github.com/nixflow/nixflow/timing"
)

// SchemaVersion is the version of the JSON job graph this compiler reads.
const SchemaVersion = 1

// Plan is a validated, normalised workflow.
type Plan struct {
	Name    string            `json:"name"`
	Env     map[string]string `json:"env,omitempty"`
	EnvFrom []Provider        `json:"envFrom,omitempty"`
	// LogFormat is the workflow's preferred output format, if it sets one.
	LogFormat string `json:"logFormat,omitempty"`
	// LogLevel is the workflow's preferred level of nixflow's own
	// diagnostics (the default of --log-level), if it sets one.
	LogLevel string `json:"logLevel,omitempty"`
	// Warnings are what the compiler accepted but the author should know
	// (a retry whose minTime exceeds its maxTime), and what the tool that
	// generated the graph reported (steps renamed to be unique), one
	// message each, sorted.
	Warnings []string `json:"warnings,omitempty"`
	// Jobs in topological order, ties broken by name.
	Jobs []*Job `json:"jobs"`
	// Levels groups job names by their depth in the graph, for display and
	// for --schedule levels.
	Levels [][]string `json:"levels"`

	byName map[string]*Job
	// unselected are the jobs Select left out: the names their providers
	// declare secret are secrets all the same (RequiredSecretNames).
	unselected []*Job
}

// Job returns the job with the given name, or nil.
func (p *Plan) Job(name string) *Job { return p.byName[name] }

// Job is one job of a plan.
type Job struct {
	Name            string            `json:"name"`
	Executor        Executor          `json:"executor"`
	Needs           []string          `json:"needs,omitempty"`
	Condition       Condition         `json:"condition"`
	ContinueOnError bool              `json:"continueOnError,omitempty"`
	Env             map[string]string `json:"env,omitempty"`
	EnvFrom         []Provider        `json:"envFrom,omitempty"`
	Inputs          []Input           `json:"inputs,omitempty"`
	Outputs         []Output          `json:"outputs,omitempty"`
	// Timeout bounds the whole job; zero means none.
	Timeout timing.Duration `json:"timeout,omitempty"`
	Steps   []*Step         `json:"steps"`
	// Level is the job's depth in the graph (0: needs nothing).
	Level int `json:"level"`
}

// Step is one step of a job, with its retry and timeout resolved.
type Step struct {
	Name            string            `json:"name"`
	Bash            string            `json:"bash"`
	Deps            []Dep             `json:"deps,omitempty"`
	Env             map[string]string `json:"env,omitempty"`
	Condition       Condition         `json:"condition"`
	ContinueOnError bool              `json:"continueOnError,omitempty"`
	Retry           Retry             `json:"retry"`
	// Timeout bounds each attempt; zero means none.
	Timeout timing.Duration `json:"timeout,omitempty"`
	// Workdir is relative to the job's workspace; empty for the workspace.
	Workdir string `json:"workdir,omitempty"`
}

// Dep is a Nix store path whose bin/ is put on PATH for a step, with the
// derivation that builds it when known.
type Dep struct {
	Path string `json:"path"`
	Drv  string `json:"drv,omitempty"`
}

// Status is the status function a condition tests.
type Status string

// The status functions of conditions.
const (
	StatusSuccess   Status = "success"
	StatusFailure   Status = "failure"
	StatusAlways    Status = "always"
	StatusCancelled Status = "cancelled"
	// StatusExpr marks a condition whose status part is an expression
	// (`!cancelled()`, `failure() || cancelled()`), kept in Condition.Expr.
	StatusExpr Status = "expr"
)

// Condition decides whether a job or step runs: its status function (or
// expression) must hold and, when Command is set, the command must exit 0.
type Condition struct {
	Status Status `json:"status"`
	// Expr is the status expression when Status is StatusExpr, written
	// back in a normal form.
	Expr    string `json:"expr,omitempty"`
	Command string `json:"command,omitempty"`
}

// String gives the condition back in the workflow's syntax.
func (c Condition) String() string {
	status := string(c.Status) + "()"
	if c.Status == StatusExpr {
		status = c.Expr
		if strings.Contains(status, "||") && c.Command != "" {
			status = "(" + status + ")"
		}
	}
	switch {
	case c.Command == "":
		return status
	case c.Status == StatusSuccess:
		return c.Command
	default:
		return status + " && " + c.Command
	}
}

// Backoff is how the wait between attempts grows.
type Backoff string

// The backoff strategies.
const (
	BackoffExponential Backoff = "exponential"
	BackoffLinear      Backoff = "linear"
	BackoffConstant    Backoff = "constant"
)

// Retry is a resolved retry policy.
type Retry struct {
	MaxAttempts int             `json:"maxAttempts"`
	Backoff     Backoff         `json:"backoff"`
	MinTime     timing.Duration `json:"minTime"`
	MaxTime     timing.Duration `json:"maxTime"`
}

// DefaultRetry is the policy of a step no layer configures: one attempt.
var DefaultRetry = Retry{
	MaxAttempts: 1,
	Backoff:     BackoffExponential,
	MinTime:     timing.Duration(time.Second),
	MaxTime:     timing.Duration(60 * time.Second),
}

// Delay is the wait after failed attempt n (1-based).
func (r Retry) Delay(n int) time.Duration {
	minT, maxT := time.Duration(r.MinTime), time.Duration(r.MaxTime)
	var d time.Duration
	switch r.Backoff {
	case BackoffLinear:
		d = minT * time.Duration(n)
	case BackoffConstant:
		d = minT
	default:
		d = minT
		for i := 1; i < n && d < maxT; i++ {
			d *= 2
		}
	}
	if d > maxT || d < 0 {
		d = maxT
	}
	return d
}

// Provider is an env provider: it yields variables at run time.
type Provider struct {
	Type string `json:"type"`
	// static
	Values map[string]string `json:"values,omitempty"`
	// file and sops
	Path   string `json:"path,omitempty"`
	Format string `json:"format,omitempty"`
	// file, sops: whether a missing file is an error.
	Required bool `json:"required,omitempty"`
	// command
	Command string `json:"command,omitempty"`
	// exec: Path is a program, or a store path whose bin/ holds one.
	// exec and file: Drv builds Path when it is missing.
	Drv string `json:"drv,omitempty"`
	// required
	Names []string `json:"names,omitempty"`
	// Secrets overrides whether the provider's variables are secrets
	// (file, sops, command, exec, required: by default they are).
	Secrets *bool `json:"secrets,omitempty"`
}

// Secret reports whether the provider's variables are secret and must be
// masked in every log sink: the values a file, sops or command provider
// gives, and the final values of the names a required provider lists
// (the way CI passes tokens), unless the provider says secrets: false.
func (p Provider) Secret() bool {
	if p.Secrets != nil {
		return *p.Secrets && p.Type != "static"
	}
	switch p.Type {
	case "file", "sops", "command", "exec", "required":
		return true
	}
	return false
}

// Input restores an artifact before a job's steps.
type Input struct {
	Name string `json:"name"`
	// Path is where it is restored, relative to the workspace; empty for
	// the artifact's original path.
	Path string `json:"path,omitempty"`
}

// Output saves a path of the workspace as a named artifact after a job's
// steps.
type Output struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// StorePaths lists the store paths of the deps of the job's steps, each
// once, in the order they first appear: the roots of the closure the job
// needs where its steps run.
func (j *Job) StorePaths() []string {
	var paths []string
	seen := map[string]bool{}
	for _, s := range j.Steps {
		for _, d := range s.Deps {
			if !seen[d.Path] {
				seen[d.Path] = true
				paths = append(paths, d.Path)
			}
		}
	}
	return paths
}

// OutputEnvName is the variable under which dependents see output key of
// job: NEEDS_<JOB>_<KEY>, upper-cased, every other character than a
// letter or a digit as '_'. Job names that give the same <JOB> are
// refused when a workflow is compiled.
func OutputEnvName(job, key string) string {
	return "NEEDS_" + envPart(job) + "_" + envPart(key)
}

func envPart(s string) string {
	b := []byte(strings.ToUpper(s))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// DeclaredNames lists every variable name a workflow declares: in env at any
// level, as static provider values, or as required names. nixflow's own
// environment overrides exactly these, in both engines.
func (p *Plan) DeclaredNames() map[string]bool {
	names := map[string]bool{}
	addProviders := func(ps []Provider) {
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

// ArtifactNames lists the artifacts the jobs declare as outputs, sorted
// (an artifact's name is unique in a plan).
func (p *Plan) ArtifactNames() []string {
	var names []string
	for _, j := range p.Jobs {
		for _, o := range j.Outputs {
			names = append(names, o.Name)
		}
	}
	slices.Sort(names)
	return names
}

// RequiredSecretNames lists, once each and in plan order, the names the
// secret required providers list, the workflow's and every job's (those
// of the jobs a selection left out too, last): their values are secrets
// wherever they come from (a failing provider's message included; a
// local step of a selected job inherits nixflow's environment), in both
// engines.
func (p *Plan) RequiredSecretNames() []string {
	var names []string
	seen := map[string]bool{}
	add := func(ps []Provider) {
		for _, pr := range ps {
			if pr.Type != "required" || !pr.Secret() {
				continue
			}
			for _, n := range pr.Names {
				if !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		}
	}
	add(p.EnvFrom)
	for _, j := range p.Jobs {
		add(j.EnvFrom)
	}
	for _, j := range p.unselected {
		add(j.EnvFrom)
	}
	return names
}
