// Package script is the bash backend of the compiler: it turns a Plan into
// one self-contained bash script that runs the workflow with the same
// semantics as the Go engine for local jobs (scheduling, conditions,
// retry, timeouts, JOB_ENV, artifacts, providers, masking, Ctrl-C), so
// that `ssh host < script` runs a pipeline on a machine that has bash and
// nothing of nixflow. The runtime is runtime.bash, embedded; the plan is
// written as bash data and functions in front of it.
package script

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"mvdan.cc/sh/v3/syntax"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/internal/procsh"
	"github.com/nixflow/nixflow/timing"
)

//go:embed runtime.bash
var runtime string

// Options configure a compiled script.
type Options struct {
	// Source names the workflow in the script's header.
	Source string
	// MaxParallel is the default cap on running jobs: 0 for no cap, -1
	// for the number of CPUs of the host that runs the script.
	MaxParallel int
	// Levels makes the script run the graph level by level by default.
	Levels bool
	// LocalOnly maps jobs of other executors to local ones, with a
	// warning, instead of refusing them.
	LocalOnly bool
}

// ExecutorError lists the jobs whose executor a script cannot drive.
type ExecutorError struct {
	Jobs []string // "NAME (TYPE)"
}

func (e *ExecutorError) Error() string {
	lines := make([]string, len(e.Jobs))
	for i, j := range e.Jobs {
		lines[i] = "job " + j + ": a compiled script runs local jobs only"
	}
	return strings.Join(lines, "\n")
}

// Compile writes the script of a plan. Warnings say which jobs were mapped
// to the local executor (with LocalOnly). The same plan and options give
// the same bytes.
func Compile(plan *compiler.Plan, opts Options) (script []byte, warnings []string, err error) {
	var bad []string
	for _, j := range plan.Jobs {
		if j.Executor.Type == "local" {
			continue
		}
		if opts.LocalOnly {
			warnings = append(warnings, fmt.Sprintf("job %s: %s executor mapped to local (--local-only)", j.Name, j.Executor.Type))
			continue
		}
		bad = append(bad, fmt.Sprintf("%s (%s executor)", j.Name, j.Executor.Type))
	}
	if len(bad) > 0 {
		return nil, nil, &ExecutorError{Jobs: bad}
	}
	if err := execProviders(plan); err != nil {
		return nil, nil, err
	}
	planJSON, err := json.Marshal(plan)
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(planJSON)
	hash := hex.EncodeToString(sum[:])

	var b bytes.Buffer
	w := &writer{b: &b}
	w.header(plan, opts, hash)
	w.planData(plan, opts, hash, planJSON)
	b.WriteString(runtime)
	b.WriteString("\n")
	b.WriteString(procsh.Bash)
	b.WriteString("\nnf_main \"$@\"; exit \"$?\"\n")
	return b.Bytes(), warnings, nil
}

// ProviderError lists the providers a compiled script cannot read.
type ProviderError struct {
	Providers []string
}

func (e *ProviderError) Error() string {
	return strings.Join(e.Providers, "\n")
}

// execProviders refuses the exec providers of a plan: the script has no
// reader of their shell syntax (export lines, quoted as the shell quotes
// them, never run).
func execProviders(plan *compiler.Plan) error {
	var bad []string
	check := func(where string, ps []compiler.Provider) {
		for i, p := range ps {
			if p.Type == "exec" {
				bad = append(bad, fmt.Sprintf("%senvFrom[%d]: an exec provider (%s): a compiled script cannot read one", where, i, p.Path))
			}
		}
	}
	check("", plan.EnvFrom)
	for _, j := range plan.Jobs {
		check("job "+j.Name+": ", j.EnvFrom)
	}
	if len(bad) > 0 {
		return &ProviderError{Providers: bad}
	}
	return nil
}

type writer struct {
	b *bytes.Buffer
}

func (w *writer) p(format string, args ...any) { fmt.Fprintf(w.b, format, args...) }

// q quotes a value for bash.
func q(s string) string {
	if s == "" {
		return "''"
	}
	out, err := syntax.Quote(s, syntax.LangBash)
	if err != nil {
		// Only strings with NUL bytes cannot be quoted; JSON text has none
		// that survive the compiler, but never emit broken bash.
		return "''"
	}
	return out
}

func (w *writer) header(plan *compiler.Plan, opts Options, hash string) {
	src := opts.Source
	if src == "" {
		src = "(unnamed)"
	}
	w.p("#!/usr/bin/env bash\n")
	w.p("# nixflow workflow %s, compiled by `nixflow compile` from %s\n", oneLine(plan.Name), oneLine(src))
	w.p("# plan sha256 %s\n", hash)
	w.p("#\n# One self-contained bash script: the plan is embedded, everything it needs\n")
	w.p("# is inline. Run it with `bash SCRIPT [--help]`, or on another host with\n")
	w.p("# `ssh HOST < SCRIPT` (a bash login shell) or `ssh HOST bash -s -- ARGS < SCRIPT`.\n")
	w.p("# Nothing runs before the last line is read. Generated: do not edit.\n")
	w.p("# shellcheck disable=SC2016,SC2034,SC2317\n")
	w.p("[ -n \"${BASH_VERSION:-}\" ] || { echo \"error: this script needs bash; run it with bash (ssh HOST bash -s < SCRIPT)\" >&2; exit 2; }\n\n")
}

func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// ms is d in whole milliseconds, rounded up: a timeout under a
// millisecond (900µs) is not one of 0, which the runtime reads as none.
func ms(d timing.Duration) int64 {
	m := time.Duration(d).Milliseconds()
	if time.Duration(d)%time.Millisecond > 0 {
		m++
	}
	return m
}

// declared lists every variable name the workflow declares (any env, a
// static provider, a required provider): the host's values of these
// override the workflow's, as with nixflow run.
func declared(p *compiler.Plan) []string {
	return sortedKeys(p.DeclaredNames())
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func words(list []string) string {
	quoted := make([]string, len(list))
	for i, s := range list {
		quoted[i] = q(s)
	}
	return "(" + strings.Join(quoted, " ") + ")"
}

func ints(list []int) string {
	s := make([]string, len(list))
	for i, n := range list {
		s[i] = strconv.Itoa(n)
	}
	return "(" + strings.Join(s, " ") + ")"
}

// priority orders jobs as the Go scheduler picks ready ones: the longest
// chain of dependents first, then plan order.
func priority(p *compiler.Plan, index map[string]int) []int {
	dependents := map[string][]string{}
	for _, j := range p.Jobs {
		for _, n := range j.Needs {
			dependents[n] = append(dependents[n], j.Name)
		}
	}
	depth := map[string]int{}
	for i := len(p.Jobs) - 1; i >= 0; i-- {
		j := p.Jobs[i]
		d := 0
		for _, c := range dependents[j.Name] {
			d = max(d, depth[c]+1)
		}
		depth[j.Name] = d
	}
	order := make([]int, len(p.Jobs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return depth[p.Jobs[order[a]].Name] > depth[p.Jobs[order[b]].Name]
	})
	return order
}

func ancestors(p *compiler.Plan, job *compiler.Job, index map[string]int) []int {
	seen := map[string]bool{}
	var visit func(j *compiler.Job)
	visit = func(j *compiler.Job) {
		for _, n := range j.Needs {
			if !seen[n] {
				seen[n] = true
				visit(p.Job(n))
			}
		}
	}
	visit(job)
	var out []int
	for n := range seen {
		out = append(out, index[n])
	}
	sort.Ints(out)
	return out
}

func (w *writer) planData(p *compiler.Plan, opts Options, hash string, planJSON []byte) {
	index := map[string]int{}
	for i, j := range p.Jobs {
		index[j.Name] = i
	}
	w.p("# The plan.\nnf_plan() {\n")
	w.p("  nf_name=%s\n  nf_plan_hash=%s\n", q(p.Name), q(hash))
	// The plan itself, for the run directory (nixflow runs and logs read it).
	w.p("  nf_plan_json=%s\n", q(string(planJSON)))
	w.p("  nf_default_max_parallel=%d\n", opts.MaxParallel)
	levels := 0
	if opts.Levels {
		levels = 1
	}
	w.p("  nf_default_levels=%d\n", levels)
	// The workflow's preferred output format (logging.format), below
	// --log-format and NIXFLOW_LOG_FORMAT, as nixflow run has it.
	w.p("  nf_default_format=%s\n", q(cmp.Or(p.LogFormat, "structured")))
	w.p("  nf_declared=%s\n", words(declared(p)))
	var names, conds, exprs, exprTables []string
	var needs, anc, level []string
	var cleanup []int
	for _, j := range p.Jobs {
		names = append(names, j.Name)
		conds = append(conds, string(j.Condition.Status))
		exprs = append(exprs, j.Condition.Expr)
		exprTables = append(exprTables, truthTable(j.Condition))
		var n []int
		for _, x := range j.Needs {
			n = append(n, index[x])
		}
		needs = append(needs, strings.Trim(ints(n), "()"))
		// Only failure() and expression conditions look at the jobs a job
		// needs transitively: the others get none, or a deep chain would
		// make the script (and its compile) grow with its square.
		var a []int
		if j.Condition.Status == compiler.StatusFailure || j.Condition.Status == compiler.StatusExpr {
			a = ancestors(p, j, index)
		}
		anc = append(anc, strings.Trim(ints(a), "()"))
		level = append(level, strconv.Itoa(j.Level))
		c := 0
		if j.Condition.Cleanup() {
			c = 1
		}
		cleanup = append(cleanup, c)
	}
	copies := 0
	for _, j := range p.Jobs {
		if j.Executor.CopyRepo {
			copies = 1
		}
	}
	w.p("  nf_copies_repo=%d\n", copies)
	w.p("  nf_required_secret=%s\n", words(p.RequiredSecretNames()))
	w.p("  nf_jobs=%s\n", words(names))
	w.p("  nf_artifacts=%s\n", words(p.ArtifactNames()))
	w.p("  nf_job_needs=%s\n", words(needs))
	w.p("  nf_job_anc=%s\n", words(anc))
	w.p("  nf_job_cond=%s\n", words(conds))
	w.p("  nf_job_expr=%s\n  nf_job_table=%s\n", words(exprs), words(exprTables))
	w.p("  nf_job_cleanup=%s\n", ints(cleanup))
	w.p("  nf_job_level=(%s)\n", strings.Join(level, " "))
	w.p("  nf_levels=%d\n", len(p.Levels))
	w.p("  nf_job_order=%s\n", ints(priority(p, index)))
	var deps []string
	seen := map[string]bool{}
	for _, j := range p.Jobs {
		for _, s := range j.Steps {
			for _, d := range s.Deps {
				if !seen[d.Path] {
					seen[d.Path] = true
					deps = append(deps, d.Path)
				}
			}
		}
	}
	w.p("  nf_all_deps=%s\n", words(deps))
	w.p("}\n\n")

	w.p("# Workflow env providers and env.\nnf_wf_providers() {\n")
	w.providers(p.EnvFrom)
	w.p("}\nnf_wf_env() {\n")
	w.env(p.Env)
	w.p("}\n\n")
	for i, j := range p.Jobs {
		w.job(i, j)
	}
}

func (w *writer) providers(ps []compiler.Provider) {
	w.p("  :\n")
	for i, pr := range ps {
		// Whether the provider's values (a required provider's: the
		// final values of its names) are secrets.
		secret := 0
		if pr.Secret() {
			secret = 1
		}
		switch pr.Type {
		case "static":
			w.p("  nf_provider %d static %d", i, secret)
			for _, k := range sortedKeys(pr.Values) {
				w.p(" %s %s", q(k), q(pr.Values[k]))
			}
			w.p(" || return 1\n")
		case "required":
			w.p("  nf_provider %d required %d %s\n", i, secret, strings.Trim(words(pr.Names), "()"))
		case "file", "sops":
			req := 0
			if pr.Required {
				req = 1
			}
			w.p("  nf_provider %d %s %d %s %d %s || return 1\n", i, pr.Type, secret, q(pr.Path), req, q(pr.Format))
		case "command":
			w.p("  nf_provider %d command %d %s || return 1\n", i, secret, q(pr.Command))
		default:
			w.p("  nf_provider %d %s %d\n", i, q(pr.Type), secret)
		}
	}
}

func (w *writer) env(env map[string]string) {
	w.p("  :\n")
	for _, k := range sortedKeys(env) {
		w.p("  nf_set %s %s\n", q(k), q(env[k]))
	}
}

func (w *writer) job(i int, j *compiler.Job) {
	w.p("# Job %s.\n", oneLine(j.Name))
	w.p("nf_job_providers_%d() {\n", i)
	w.providers(j.EnvFrom)
	w.p("}\nnf_job_env_%d() {\n", i)
	w.env(j.Env)
	w.p("}\n")
	for k, s := range j.Steps {
		w.p("nf_step_env_%d_%d() {\n", i, k)
		w.env(s.Env)
		w.p("}\n")
	}
	coe := 0
	if j.ContinueOnError {
		coe = 1
	}
	w.p("nf_job_%d() {\n", i)
	w.p("  J_condcmd=%s\n  J_coe=%d\n", q(j.Condition.Command), coe)
	w.p("  J_timeout_ms=%d\n  J_timeout_str=%s\n", ms(j.Timeout), q(j.Timeout.String()))
	cr := 0
	if j.Executor.CopyRepo {
		cr = 1
	}
	w.p("  J_copyrepo=%d\n", cr)
	var in, out []string
	for _, x := range j.Inputs {
		in = append(in, x.Name, x.Path)
	}
	for _, x := range j.Outputs {
		out = append(out, x.Name, x.Path)
	}
	w.p("  J_inputs=%s\n  J_outputs=%s\n", words(in), words(out))
	var names, bash, cond, condcmd, backoff, tstr, workdir, deps, drvs, sconds, tables []string
	var coes, maxA, minMs, maxMs, tms, keeps []int
	for _, s := range j.Steps {
		names = append(names, s.Name)
		bash = append(bash, s.Bash)
		cond = append(cond, string(s.Condition.Status))
		condcmd = append(condcmd, s.Condition.Command)
		sconds = append(sconds, s.Condition.String())
		tables = append(tables, truthTable(s.Condition))
		// A step skipped by a second Ctrl-C is a skip, not a cancel, when
		// its condition holds in a cancelled run.
		keep := 0
		if s.Condition.Status == compiler.StatusAlways || (s.Condition.Status == compiler.StatusExpr && s.Condition.Cleanup()) {
			keep = 1
		}
		keeps = append(keeps, keep)
		c := 0
		if s.ContinueOnError {
			c = 1
		}
		coes = append(coes, c)
		maxA = append(maxA, max(s.Retry.MaxAttempts, 1))
		backoff = append(backoff, string(s.Retry.Backoff))
		minMs = append(minMs, int(ms(s.Retry.MinTime)))
		maxMs = append(maxMs, int(ms(s.Retry.MaxTime)))
		tms = append(tms, int(ms(s.Timeout)))
		tstr = append(tstr, s.Timeout.String())
		workdir = append(workdir, s.Workdir)
		var dp, dv []string
		for _, d := range s.Deps {
			dp = append(dp, d.Path)
			dv = append(dv, d.Drv)
		}
		deps = append(deps, strings.Join(dp, "\n"))
		drvs = append(drvs, strings.Join(dv, "\n"))
	}
	w.p("  S_name=%s\n", words(names))
	w.p("  S_bash=%s\n", words(bash))
	w.p("  S_cond=%s\n  S_condcmd=%s\n  S_condstr=%s\n", words(cond), words(condcmd), words(sconds))
	w.p("  S_table=%s\n  S_keep=%s\n", words(tables), ints(keeps))
	w.p("  S_coe=%s\n  S_max=%s\n  S_backoff=%s\n", ints(coes), ints(maxA), words(backoff))
	w.p("  S_min_ms=%s\n  S_max_ms=%s\n", ints(minMs), ints(maxMs))
	w.p("  S_timeout_ms=%s\n  S_timeout_str=%s\n", ints(tms), words(tstr))
	w.p("  S_workdir=%s\n  S_deps=%s\n  S_drvs=%s\n", words(workdir), words(deps), words(drvs))
	w.p("}\n\n")
}

// truthTable is a status expression's value for each combination of the
// status functions, so that the script needs no parser: eight digits, the
// one at success*4 + failure*2 + cancelled being 1 where it holds. Other
// conditions have none (the script evaluates their one function itself).
func truthTable(c compiler.Condition) string {
	if c.Status != compiler.StatusExpr {
		return ""
	}
	var b strings.Builder
	for i := 0; i < 8; i++ {
		v := compiler.StatusValues{Success: i&4 != 0, Failure: i&2 != 0, Cancelled: i&1 != 0}
		if c.Holds(v) {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}
