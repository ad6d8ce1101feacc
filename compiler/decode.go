package compiler

import (
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nixflow/nixflow/timing"
)

// decoder walks a parsed document and collects every problem it meets.
type decoder struct {
	file string
	data []byte
	// parser builds the lazy values of the document (its jobs).
	parser *jsonParser
	errs   ErrorList
	pos    *positions // built at the first error
	// warns are problems the compiler accepts, reported alongside a plan.
	warns ErrorList
}

// warn records a warning about n.
func (d *decoder) warn(n *node, p jsonPath, format string, args ...any) {
	e := &Error{File: d.file, Path: p.String(), Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = d.position(n.offset)
	}
	d.warns = append(d.warns, e)
}

func (d *decoder) errorf(n *node, offset int, p jsonPath, format string, args ...any) {
	e := &Error{File: d.file, Path: p.String(), Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		offset = n.offset
	}
	if offset >= 0 {
		e.Line, e.Col = d.position(offset)
	}
	d.errs = append(d.errs, e)
}

// position returns the line and column of offset, building the table of
// line starts on first use.
func (d *decoder) position(offset int) (line, col int) {
	if d.pos == nil {
		d.pos = newPositions(d.data)
	}
	return d.pos.at(offset)
}

func (d *decoder) at(n *node, p jsonPath, format string, args ...any) {
	d.errorf(n, -1, p, format, args...)
}

func (d *decoder) typeError(n *node, p jsonPath, want string) {
	d.at(n, p, "expected %s, got %s", want, n.kind)
}

// object checks that n is an object whose keys are all known. aliases maps
// an accepted spelling to its canonical key; giving both is an error. It
// returns the fields by canonical key.
func (d *decoder) object(n *node, p jsonPath, known []string, aliases map[string]string) (fieldSet, bool) {
	if n.kind != kindObject {
		d.typeError(n, p, "an object")
		return nil, false
	}
	out := make(fieldSet, 0, len(n.fields))
	canonical := func(key string) string {
		if c, ok := aliases[key]; ok {
			return c
		}
		return key
	}
	for i, f := range n.fields {
		key := f.key
		canon := canonical(key)
		if !contains(known, canon) {
			// Only an error needs the names with their aliases.
			all := append([]string(nil), known...)
			for a := range aliases {
				all = append(all, a)
			}
			d.errorf(nil, f.offset, p.field(key), "unknown field%s (known: %s)", didYouMean(key, all), strings.Join(known, ", "))
			continue
		}
		if out.get(canon) != nil {
			prev := ""
			for _, g := range n.fields[:i] {
				if canonical(g.key) == canon {
					prev = g.key
					break
				}
			}
			if prev == key {
				d.errorf(nil, f.offset, p.field(key), "duplicate field")
			} else {
				d.errorf(nil, f.offset, p.field(key), "%q and %q are the same field; give one", prev, key)
			}
			continue
		}
		out = append(out, field{key: canon, offset: f.offset, value: f.value})
	}
	return out, true
}

// fieldSet is an object's known fields, by canonical key: objects have a
// few, so a list looked through costs less than a map.
type fieldSet []field

// get returns the value of key, or nil.
func (s fieldSet) get(key string) *node {
	for i := range s {
		if s[i].key == key {
			return s[i].value
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d *decoder) str(n *node, p jsonPath) (string, bool) {
	if n.kind != kindString {
		d.typeError(n, p, "a string")
		return "", false
	}
	if strings.IndexByte(n.str, 0) >= 0 {
		// Valid JSON ("\u0000"), but no command line, environment
		// variable or file name can hold it: it would fail at run time.
		d.at(n, p, "contains a NUL character (\\u0000)")
		return "", false
	}
	return n.str, true
}

// nonEmpty decodes a string that must not be empty or blank.
func (d *decoder) nonEmpty(n *node, p jsonPath) (string, bool) {
	s, ok := d.str(n, p)
	if ok && strings.TrimSpace(s) == "" {
		d.at(n, p, "must not be empty")
		return "", false
	}
	return s, ok
}

func (d *decoder) boolean(n *node, p jsonPath) (bool, bool) {
	if n.kind != kindBool {
		d.typeError(n, p, "true or false")
		return false, false
	}
	return n.boolean, true
}

func (d *decoder) integer(n *node, p jsonPath, lo, hi int) (int, bool) {
	if n.kind != kindNumber {
		d.typeError(n, p, "an integer")
		return 0, false
	}
	v, err := strconv.Atoi(n.str)
	if err != nil {
		d.at(n, p, "expected an integer, got %s", n.str)
		return 0, false
	}
	if v < lo || v > hi {
		d.at(n, p, "must be between %d and %d, got %d", lo, hi, v)
		return 0, false
	}
	return v, true
}

// seconds decodes a non-negative number of seconds.
func (d *decoder) seconds(n *node, p jsonPath) (timing.Duration, bool) {
	if n.kind != kindNumber {
		d.typeError(n, p, "a number of seconds")
		return 0, false
	}
	f, err := strconv.ParseFloat(n.str, 64)
	switch {
	case err == nil && f > math.MaxInt64/float64(time.Second), errors.Is(err, strconv.ErrRange) && f > 0:
		d.at(n, p, "must be at most %d seconds (about 292 years), got %s", int64(math.MaxInt64/int64(time.Second)), n.str)
		return 0, false
	case err != nil || f < 0:
		d.at(n, p, "must be a non-negative number of seconds, got %s", n.str)
		return 0, false
	}
	return timing.Duration(f * float64(time.Second)), true
}

// timeout decodes a positive number of seconds or a duration string. A
// null yields (0, true, true): the layer turns the timeout off.
func (d *decoder) timeout(n *node, p jsonPath) (v timing.Duration, isNull, ok bool) {
	return d.positiveDuration(n, p, "use null for no timeout")
}

// positiveDuration decodes a positive number of seconds or a duration
// string; nullHint says, in the error for zero or less, what null does.
func (d *decoder) positiveDuration(n *node, p jsonPath, nullHint string) (v timing.Duration, isNull, ok bool) {
	switch n.kind {
	case kindNull:
		return 0, true, true
	case kindNumber:
		if strings.HasPrefix(n.str, "-") {
			d.at(n, p, "must be greater than zero (%s)", nullHint)
			return 0, false, false
		}
		v, ok = d.seconds(n, p)
	case kindString:
		s := strings.TrimSpace(n.str)
		if secs, err := strconv.ParseFloat(s, 64); err == nil && secs >= 0 && !strings.ContainsAny(s, "eExXnN") {
			// "30": a number of seconds written as a string, as
			// nixactions reads it.
			s += "s"
		}
		t, err := time.ParseDuration(s)
		if err != nil {
			d.at(n, p, "invalid duration %q (examples: 90, \"90s\", \"5m\", \"1h30m\")", n.str)
			return 0, false, false
		}
		v, ok = timing.Duration(t), true
	default:
		d.typeError(n, p, "seconds or a duration string")
		return 0, false, false
	}
	if ok && v <= 0 {
		d.at(n, p, "must be greater than zero (%s)", nullHint)
		return 0, false, false
	}
	return v, false, ok
}

func (d *decoder) stringList(n *node, p jsonPath) ([]string, bool) {
	if n.kind != kindArray {
		d.typeError(n, p, "an array of strings")
		return nil, false
	}
	out := make([]string, 0, len(n.elems))
	ok := true
	for i, e := range n.elems {
		s, sok := d.str(e, p.elem(i))
		ok = ok && sok
		out = append(out, s)
	}
	return out, ok
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (d *decoder) env(n *node, p jsonPath) map[string]string {
	if n.kind != kindObject {
		d.typeError(n, p, "an object of strings")
		return nil
	}
	out := make(map[string]string, len(n.fields))
	seen := map[string]bool{}
	for _, f := range n.fields {
		fp := p.field(f.key)
		if !envName.MatchString(f.key) {
			d.errorf(nil, f.offset, fp, "invalid variable name %q (letters, digits and _, not starting with a digit)", f.key)
			continue
		}
		if seen[f.key] {
			d.errorf(nil, f.offset, fp, "duplicate variable")
			continue
		}
		seen[f.key] = true
		if s, ok := d.str(f.value, fp); ok {
			out[f.key] = s
		}
	}
	return out
}

// retryLayer is one layer's retry setting: absent, null, or some fields.
type retryLayer struct {
	set, null   bool
	maxAttempts *int
	backoff     *Backoff
	minT, maxT  *timing.Duration
}

func (r retryLayer) apply(base Retry) Retry {
	if !r.set {
		return base
	}
	if r.null {
		return DefaultRetry
	}
	if r.maxAttempts != nil {
		base.MaxAttempts = *r.maxAttempts
	}
	if r.backoff != nil {
		base.Backoff = *r.backoff
	}
	if r.minT != nil {
		base.MinTime = *r.minT
	}
	if r.maxT != nil {
		base.MaxTime = *r.maxT
	}
	return base
}

var retryFields = []string{"maxAttempts", "backoff", "minTime", "maxTime"}

var retryAliases = map[string]string{
	"max_attempts": "maxAttempts",
	"min_time":     "minTime",
	"max_time":     "maxTime",
}

var backoffs = []string{string(BackoffExponential), string(BackoffLinear), string(BackoffConstant)}

func (d *decoder) retry(n *node, p jsonPath) retryLayer {
	if n == nil {
		return retryLayer{}
	}
	r := retryLayer{set: true}
	if n.kind == kindNull {
		r.null = true
		return r
	}
	fields, ok := d.object(n, p, retryFields, retryAliases)
	if !ok {
		return retryLayer{}
	}
	if v := fields.get("maxAttempts"); v != nil {
		if a, ok := d.integer(v, p.field("maxAttempts"), 1, 1000); ok {
			r.maxAttempts = &a
		}
	}
	if v := fields.get("backoff"); v != nil {
		if s, ok := d.str(v, p.field("backoff")); ok {
			if contains(backoffs, s) {
				b := Backoff(s)
				r.backoff = &b
			} else {
				d.at(v, p.field("backoff"), "unknown backoff %q%s (known: %s)", s, didYouMean(s, backoffs), strings.Join(backoffs, ", "))
			}
		}
	}
	if v := fields.get("minTime"); v != nil {
		if t, ok := d.seconds(v, p.field("minTime")); ok {
			r.minT = &t
		}
	}
	if v := fields.get("maxTime"); v != nil {
		if t, ok := d.seconds(v, p.field("maxTime")); ok {
			r.maxT = &t
		}
	}
	if r.minT != nil && r.maxT != nil && *r.minT > *r.maxT {
		// nixactions accepts this and caps the wait at maxTime; so does
		// nixflow (see the step's retry), with a word to the author.
		d.warn(n, p, "minTime (%s) is greater than maxTime (%s): waits are capped at maxTime", *r.minT, *r.maxT)
	}
	return r
}

// timeoutLayer is one layer's timeout: absent, null (off) or a value.
type timeoutLayer struct {
	set bool
	v   timing.Duration
}

func (d *decoder) timeoutLayer(n *node, p jsonPath) timeoutLayer {
	if n == nil {
		return timeoutLayer{}
	}
	v, _, ok := d.timeout(n, p)
	if !ok {
		return timeoutLayer{}
	}
	return timeoutLayer{set: true, v: v}
}

func (d *decoder) condition(n *node, p jsonPath) Condition {
	if n == nil || n.kind == kindNull {
		return Condition{Status: StatusSuccess}
	}
	s, ok := d.str(n, p)
	if !ok {
		return Condition{Status: StatusSuccess}
	}
	c, err := ParseCondition(s)
	if err != nil {
		d.at(n, p, "%v", err)
		return Condition{Status: StatusSuccess}
	}
	return c
}

// relPath checks a path that must stay inside the workspace.
func (d *decoder) relPath(n *node, p jsonPath) (string, bool) {
	s, ok := d.nonEmpty(n, p)
	if !ok {
		return "", false
	}
	if path.IsAbs(s) {
		d.at(n, p, "path %q must be relative to the workspace", s)
		return "", false
	}
	clean := path.Clean(s)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		d.at(n, p, "path %q leaves the workspace", s)
		return "", false
	}
	return clean, true
}

var workflowFields = []string{"version", "name", "env", "envFrom", "retry", "timeout", "logging", "jobs", "warnings"}

// conditionAliases are the spellings of nixactions (and GitHub Actions)
// accepted for job and step fields.
var conditionAliases = map[string]string{"if": "condition", "continue-on-error": "continueOnError"}

var jobFields = []string{"executor", "steps", "needs", "condition", "continueOnError", "env", "envFrom",
	"inputs", "outputs", "retry", "timeout"}

var stepFields = []string{"name", "bash", "deps", "env", "condition", "continueOnError", "retry", "timeout", "workdir"}

// MaxJobName is the longest job name, in bytes: a job's name names its
// files in the run directory (logs/<job>.log, jobs/<job>), and a file
// name has at most 255 bytes.
const MaxJobName = 200

var jobName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// workflow is the decoded document before graph-level checks.
type workflow struct {
	plan         *Plan
	retry        retryLayer
	timeout      timeoutLayer
	jobAt        map[string]jobOffsets
	jobKeyOffset map[string]int
}

// jobOffsets are where the checks across jobs report problems in a job's
// document (-1: not given): only these stay once the job is decoded.
type jobOffsets struct {
	needs int // the needs array, where a cycle is reported
	// need and inputs are the elements of the job's Needs and Inputs, one
	// for each: an element with an error of its own is left out of those
	// lists, so an index into them is not always an index into the array.
	need, inputs []element
	// outputs are the offsets of the keys of the job's Outputs, by name.
	outputs map[string]int
}

// element is where a value decoded from an array element was in the
// document: its index in the array and its offset.
type element struct {
	index, offset int
}

func (d *decoder) workflow(root *node) *workflow {
	jobCount := 0
	if jobs := root.get("jobs"); jobs != nil {
		jobCount = len(jobs.fields)
	}
	w := &workflow{
		plan:         &Plan{byName: make(map[string]*Job, jobCount)},
		jobAt:        make(map[string]jobOffsets, jobCount),
		jobKeyOffset: make(map[string]int, jobCount),
	}
	var doc jsonPath // the document itself
	fields, ok := d.object(root, doc, workflowFields, nil)
	if !ok {
		return w
	}
	if v := fields.get("version"); v == nil {
		d.at(root, doc, "missing required field %q (this compiler reads version %d)", "version", SchemaVersion)
	} else if n, ok := d.integer(v, doc.field("version"), math.MinInt, math.MaxInt); ok && n != SchemaVersion {
		d.at(v, doc.field("version"), "unsupported schema version %d (this compiler reads version %d)", n, SchemaVersion)
	}
	if v := fields.get("name"); v == nil {
		d.at(root, doc, "missing required field %q", "name")
	} else if s, ok := d.nonEmpty(v, doc.field("name")); ok {
		w.plan.Name = s
	}
	if v := fields.get("env"); v != nil {
		w.plan.Env = d.env(v, doc.field("env"))
	}
	if v := fields.get("envFrom"); v != nil {
		w.plan.EnvFrom = d.providers(v, doc.field("envFrom"))
	}
	w.retry = d.retry(fields.get("retry"), doc.field("retry"))
	w.timeout = d.timeoutLayer(fields.get("timeout"), doc.field("timeout"))
	if v := fields.get("logging"); v != nil {
		w.plan.LogFormat, w.plan.LogLevel = d.logging(v, doc.field("logging"))
	}
	if v := fields.get("warnings"); v != nil {
		if list, ok := d.stringList(v, doc.field("warnings")); ok {
			w.plan.Warnings = list
		}
	}
	jobs, jp := fields.get("jobs"), doc.field("jobs")
	if jobs == nil {
		d.at(root, doc, "missing required field %q", "jobs")
		return w
	}
	if jobs.kind != kindObject {
		d.typeError(jobs, jp, "an object of jobs")
		return w
	}
	if len(jobs.fields) == 0 {
		d.at(jobs, jp, "a workflow needs at least one job")
	}
	mangled := make(map[string]string, len(jobs.fields))
	for _, f := range jobs.fields {
		p := jp.field(f.key)
		if !jobName.MatchString(f.key) {
			d.errorf(nil, f.offset, p, "invalid job name %q (letters, digits, '_', '-' and '.', not starting with '-' or '.')", f.key)
			continue
		}
		if len(f.key) > MaxJobName {
			d.errorf(nil, f.offset, p, "job name too long: %d characters, at most %d (it names the job's files)", len(f.key), MaxJobName)
			continue
		}
		if other, dup := mangled[envPart(f.key)]; dup && other != f.key {
			d.errorf(nil, f.offset, p, "jobs %q and %q would both give their outputs as NEEDS_%s_<KEY>: rename one", other, f.key, envPart(f.key))
			continue
		}
		mangled[envPart(f.key)] = f.key
		if _, dup := w.plan.byName[f.key]; dup {
			d.errorf(nil, f.offset, p, "duplicate job")
			continue
		}
		v := f.value
		if v.lazy {
			var err error
			if v, err = d.parser.valueAt(f.value.offset, 2); err != nil {
				// The syntax was checked: this cannot happen.
				d.errorf(nil, f.value.offset, p, "invalid JSON: %v", err)
				continue
			}
		}
		j, at := d.job(w, f.key, v, p)
		w.plan.byName[f.key] = j
		w.jobAt[f.key] = at
		w.jobKeyOffset[f.key] = f.offset
	}
	return w
}

var logFormats = []string{"structured", "simple", "json"}

// logLevels are the levels of logging.level, those of --log-level.
var logLevels = []string{"trace", "debug", "info", "warn", "error"}

// logging decodes the workflow's output preferences: the format, and the
// level of nixflow's own diagnostics.
func (d *decoder) logging(n *node, p jsonPath) (format, level string) {
	fields, ok := d.object(n, p, []string{"format", "level"}, nil)
	if !ok {
		return "", ""
	}
	pick := func(key, what string, allowed []string) string {
		v := fields.get(key)
		if v == nil || v.kind == kindNull {
			return ""
		}
		s, ok := d.str(v, p.field(key))
		if ok && !contains(allowed, s) {
			d.at(v, p.field(key), "unknown %s %q%s (known: %s)", what, s, didYouMean(s, allowed), strings.Join(allowed, ", "))
			return ""
		}
		return s
	}
	return pick("format", "log format", logFormats), pick("level", "log level", logLevels)
}

// job decodes a job, and returns it with where the checks across jobs
// report problems in it.
func (d *decoder) job(w *workflow, name string, n *node, p jsonPath) (*Job, jobOffsets) {
	j := &Job{Name: name, Condition: Condition{Status: StatusSuccess}, Executor: Executor{Type: "local", CopyRepo: true, Local: &LocalExecutor{}}}
	at := jobOffsets{needs: -1}
	fields, ok := d.object(n, p, jobFields, map[string]string{"actions": "steps", "if": "condition", "continue-on-error": "continueOnError"})
	if !ok {
		return j, at
	}
	if v := fields.get("executor"); v != nil && v.kind != kindNull {
		j.Executor = d.executor(v, p.field("executor"))
	}
	if v := fields.get("needs"); v != nil {
		at.needs = v.offset
		j.Needs, at.need = d.needs(v, p.field("needs"))
	}
	j.Condition = d.condition(fields.get("condition"), p.field("condition"))
	if v := fields.get("continueOnError"); v != nil {
		j.ContinueOnError, _ = d.boolean(v, p.field("continueOnError"))
	}
	if v := fields.get("env"); v != nil {
		j.Env = d.env(v, p.field("env"))
	}
	if v := fields.get("envFrom"); v != nil {
		j.EnvFrom = d.providers(v, p.field("envFrom"))
	}
	if v := fields.get("inputs"); v != nil {
		j.Inputs, at.inputs = d.inputs(v, p.field("inputs"))
	}
	if v := fields.get("outputs"); v != nil {
		j.Outputs, at.outputs = d.outputs(v, p.field("outputs"))
	}
	jobRetry := w.retry
	if r := d.retry(fields.get("retry"), p.field("retry")); r.set {
		jobRetry = mergeRetryLayers(w.retry, r)
	}
	timeout := w.timeout
	if t := d.timeoutLayer(fields.get("timeout"), p.field("timeout")); t.set {
		timeout = t
	}
	j.Timeout = timeout.v

	steps := fields.get("steps")
	sp := p.field("steps")
	switch {
	case steps == nil:
		d.at(n, p, "missing required field %q", "steps")
	case steps.kind != kindArray:
		d.typeError(steps, sp, "an array of steps")
	case len(steps.elems) == 0:
		d.at(steps, sp, "a job needs at least one step")
	default:
		names := map[string]bool{}
		for i, e := range steps.elems {
			s := d.step(e, sp.elem(i), i, jobRetry)
			if s == nil {
				continue
			}
			if names[s.Name] {
				hint := ""
				if e.kind == kindObject && e.get("name") == nil {
					hint = " (the default name of this unnamed step; give it a name)"
				}
				d.at(e, sp.elem(i), "duplicate step name %q in job %q%s", s.Name, name, hint)
			}
			names[s.Name] = true
			j.Steps = append(j.Steps, s)
		}
	}
	return j, at
}

// needs decodes a job's needs, and returns them with their elements. An
// element that is not a string, or names a job already needed, is left out.
func (d *decoder) needs(n *node, p jsonPath) ([]string, []element) {
	if n.kind != kindArray {
		d.typeError(n, p, "an array of job names")
		return nil, nil
	}
	var out []string
	var at []element
	seen := map[string]bool{}
	for i, e := range n.elems {
		s, ok := d.str(e, p.elem(i))
		if !ok {
			continue
		}
		if seen[s] {
			d.at(e, p.elem(i), "job %q is needed twice", s)
			continue
		}
		seen[s] = true
		out = append(out, s)
		at = append(at, element{index: i, offset: e.offset})
	}
	return out, at
}

// mergeRetryLayers combines an outer and an inner layer into one layer, so
// that a step can later be applied over the job's combined setting.
type mergedRetry = retryLayer

func mergeRetryLayers(outer, inner retryLayer) mergedRetry {
	if !inner.set {
		return outer
	}
	if inner.null || !outer.set || outer.null {
		return inner
	}
	m := outer
	if inner.maxAttempts != nil {
		m.maxAttempts = inner.maxAttempts
	}
	if inner.backoff != nil {
		m.backoff = inner.backoff
	}
	if inner.minT != nil {
		m.minT = inner.minT
	}
	if inner.maxT != nil {
		m.maxT = inner.maxT
	}
	return m
}

func (d *decoder) step(n *node, p jsonPath, index int, jobRetry retryLayer) *Step {
	s := &Step{Name: fmt.Sprintf("step-%d", index+1), Condition: Condition{Status: StatusSuccess}}
	fields, ok := d.object(n, p, stepFields, conditionAliases)
	if !ok {
		return nil
	}
	if v := fields.get("name"); v != nil {
		if name, ok := d.nonEmpty(v, p.field("name")); ok {
			if strings.ContainsAny(name, "\n\r") {
				d.at(v, p.field("name"), "step name must be one line")
			}
			s.Name = name
		}
	}
	if v := fields.get("bash"); v == nil {
		d.at(n, p, "missing required field %q", "bash")
	} else if b, ok := d.nonEmpty(v, p.field("bash")); ok {
		s.Bash = b
		if len(b) >= maxArgStrlen {
			// Every executor starts it as bash -c BODY: one argument.
			d.at(v, p.field("bash"), "%d bytes long, more than the %d the kernel takes in one argument (put the script in a file of the repository and run it: bash ./ci/build.sh)", len(b), maxArgStrlen-1)
		}
	}
	if v := fields.get("deps"); v != nil {
		s.Deps = d.deps(v, p.field("deps"))
	}
	if v := fields.get("env"); v != nil {
		s.Env = d.env(v, p.field("env"))
	}
	s.Condition = d.condition(fields.get("condition"), p.field("condition"))
	if v := fields.get("continueOnError"); v != nil {
		s.ContinueOnError, _ = d.boolean(v, p.field("continueOnError"))
	}
	s.Retry = mergeRetryLayers(jobRetry, d.retry(fields.get("retry"), p.field("retry"))).apply(DefaultRetry)
	if s.Retry.MinTime > s.Retry.MaxTime {
		// Layers may combine a minTime from one level with a smaller
		// maxTime from another; the wait is capped by maxTime anyway.
		s.Retry.MinTime = s.Retry.MaxTime
	}
	if t := d.timeoutLayer(fields.get("timeout"), p.field("timeout")); t.set {
		s.Timeout = t.v
	}
	if v := fields.get("workdir"); v != nil && v.kind != kindNull {
		if wd, ok := d.relPath(v, p.field("workdir")); ok && wd != "." {
			s.Workdir = wd
		}
	}
	return s
}

func (d *decoder) deps(n *node, p jsonPath) []Dep {
	if n.kind != kindArray {
		d.typeError(n, p, "an array of store paths")
		return nil
	}
	var out []Dep
	for i, e := range n.elems {
		ep := p.elem(i)
		var dep Dep
		switch e.kind {
		case kindString:
			dep.Path = e.str
		case kindObject:
			fields, ok := d.object(e, ep, []string{"path", "drv"}, nil)
			if !ok {
				continue
			}
			if v := fields.get("path"); v == nil {
				d.at(e, ep, "missing required field %q", "path")
				continue
			} else if s, ok := d.str(v, ep.field("path")); ok {
				dep.Path = s
			} else {
				continue
			}
			if v := fields.get("drv"); v != nil && v.kind != kindNull {
				if s, ok := d.str(v, ep.field("drv")); ok {
					if !strings.HasPrefix(s, "/") || !strings.HasSuffix(s, ".drv") {
						d.at(v, ep.field("drv"), "expected an absolute .drv path, got %q", s)
					}
					dep.Drv = s
				}
			}
		default:
			d.typeError(e, ep, "a store path or {path, drv}")
			continue
		}
		if !strings.HasPrefix(dep.Path, "/") {
			d.at(e, ep, "expected an absolute store path, got %q", dep.Path)
			continue
		}
		out = append(out, dep)
	}
	return out
}

func (d *decoder) stringMap(n *node, p jsonPath) map[string]string {
	if n.kind != kindObject {
		d.typeError(n, p, "an object of strings")
		return nil
	}
	out := map[string]string{}
	seen := map[string]bool{}
	for _, f := range n.fields {
		if seen[f.key] {
			d.errorf(nil, f.offset, p.field(f.key), "duplicate key")
			continue
		}
		seen[f.key] = true
		if s, ok := d.str(f.value, p.field(f.key)); ok {
			out[f.key] = s
		}
	}
	return out
}

var providerTypes = []string{"static", "file", "sops", "command", "required", "exec"}

var providerFields = map[string][]string{
	"static":   {"type", "values"},
	"file":     {"type", "path", "required", "secrets", "drv"},
	"exec":     {"type", "path", "drv", "secrets"},
	"sops":     {"type", "file", "format", "required", "secrets"},
	"command":  {"type", "command", "secrets"},
	"required": {"type", "names", "secrets"},
}

// isFalse reports whether n is the JSON literal false.
func isFalse(n *node) bool {
	return n != nil && n.kind == kindBool && !n.boolean
}

var sopsFormats = []string{"yaml", "json", "dotenv", "ini"}

func (d *decoder) providers(n *node, p jsonPath) []Provider {
	if n.kind != kindArray {
		d.typeError(n, p, "an array of providers")
		return nil
	}
	var out []Provider
	for i, e := range n.elems {
		ep := p.elem(i)
		if e.kind != kindObject {
			d.typeError(e, ep, "a provider object")
			continue
		}
		tn := e.get("type")
		if tn == nil {
			d.at(e, ep, "missing required field %q (known: %s)", "type", strings.Join(providerTypes, ", "))
			continue
		}
		typ, ok := d.str(tn, ep.field("type"))
		if !ok {
			continue
		}
		known, ok := providerFields[typ]
		if !ok {
			d.at(tn, ep.field("type"), "unknown provider type %q%s (known: %s)", typ, didYouMean(typ, providerTypes), strings.Join(providerTypes, ", "))
			continue
		}
		fields, ok := d.object(e, ep, known, nil)
		if !ok {
			continue
		}
		pr := Provider{Type: typ}
		need := func(key string) *node {
			v := fields.get(key)
			if v == nil {
				d.at(e, ep, "missing required field %q for %s provider", key, article(typ))
			}
			return v
		}
		switch typ {
		case "static":
			if v := need("values"); v != nil {
				pr.Values = d.env(v, ep.field("values"))
			}
		case "file":
			if v := need("path"); v != nil {
				pr.Path, _ = d.nonEmpty(v, ep.field("path"))
				if strings.HasPrefix(pr.Path, "/nix/store/") && !isFalse(fields.get("secrets")) && fields.get("drv") == nil {
					// A plaintext file of secrets there is world-readable:
					// a Nix path (./.env) in a flake means the flake's
					// copy of its source. A derivation's output (drv set:
					// pkgs.writeText) is what Nix code wrote, in the store
					// by design: accepted, its values masked unless
					// secrets = false.
					d.at(v, ep.field("path"), "%q is in the Nix store, where a file of secrets is readable by every user: give the path as a string relative to the repository, e.g. \".env\"", pr.Path)
				}
			}
			d.providerDrv(&pr, fields.get("drv"), ep)
		case "sops":
			if v := need("file"); v != nil {
				pr.Path, _ = d.nonEmpty(v, ep.field("file"))
			}
			pr.Format = "yaml"
			pr.Required = true
			if v := fields.get("format"); v != nil {
				if s, ok := d.str(v, ep.field("format")); ok {
					if contains(sopsFormats, s) {
						pr.Format = s
					} else {
						d.at(v, ep.field("format"), "unknown sops format %q%s (known: %s)", s, didYouMean(s, sopsFormats), strings.Join(sopsFormats, ", "))
					}
				}
			}
		case "command":
			if v := need("command"); v != nil {
				pr.Command, _ = d.nonEmpty(v, ep.field("command"))
			}
		case "exec":
			d.execProvider(&pr, need("path"), fields.get("drv"), ep)
		case "required":
			if v := need("names"); v != nil {
				np := ep.field("names")
				names, _ := d.stringList(v, np)
				for k, name := range names {
					if v.elems[k].kind == kindString && !envName.MatchString(name) {
						d.at(v.elems[k], np.elem(k), "invalid variable name %q", name)
					}
				}
				pr.Names = names
			}
		}
		if v := fields.get("required"); v != nil {
			pr.Required, _ = d.boolean(v, ep.field("required"))
		}
		if v := fields.get("secrets"); v != nil {
			if b, ok := d.boolean(v, ep.field("secrets")); ok {
				pr.Secrets = &b
			}
		}
		out = append(out, pr)
	}
	return out
}

var artifactName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// maxArgStrlen is the kernel's limit on one argument of a program it
// starts (Linux's MAX_ARG_STRLEN, its final NUL included).
const maxArgStrlen = 32 * 4096

// MaxArtifactName is the longest artifact name, in bytes: it names the
// artifact's directory in the run directory and in --artifacts-dir,
// which a file system takes up to 255 bytes.
const MaxArtifactName = 200

// inputs decodes a job's inputs, and returns them with their elements. An
// element without an artifact name is left out.
func (d *decoder) inputs(n *node, p jsonPath) ([]Input, []element) {
	if n.kind != kindArray {
		d.typeError(n, p, "an array of artifact names or {name, path}")
		return nil, nil
	}
	var out []Input
	var at []element
	for i, e := range n.elems {
		ep := p.elem(i)
		var in Input
		switch e.kind {
		case kindString:
			in.Name = e.str
		case kindObject:
			fields, ok := d.object(e, ep, []string{"name", "path"}, nil)
			if !ok {
				continue
			}
			if v := fields.get("name"); v == nil {
				d.at(e, ep, "missing required field %q", "name")
				continue
			} else if s, ok := d.str(v, ep.field("name")); ok {
				in.Name = s
			} else {
				continue
			}
			if v := fields.get("path"); v != nil {
				if s, ok := d.relPath(v, ep.field("path")); ok {
					in.Path = s
				}
			}
		default:
			d.typeError(e, ep, "an artifact name or {name, path}")
			continue
		}
		out = append(out, in)
		at = append(at, element{index: i, offset: e.offset})
	}
	return out, at
}

// outputs decodes a job's outputs, sorted by name, and returns them with
// the offsets of their keys.
func (d *decoder) outputs(n *node, p jsonPath) ([]Output, map[string]int) {
	if n.kind != kindObject {
		d.typeError(n, p, "an object of artifact names to paths")
		return nil, nil
	}
	var out []Output
	at := make(map[string]int, len(n.fields))
	seen := map[string]bool{}
	for _, f := range n.fields {
		fp := p.field(f.key)
		if seen[f.key] {
			d.errorf(nil, f.offset, fp, "duplicate field")
			continue
		}
		seen[f.key] = true
		if !artifactName.MatchString(f.key) {
			d.errorf(nil, f.offset, fp, "invalid artifact name %q (letters, digits, '_', '-' and '.', not starting with '-' or '.')", f.key)
			continue
		}
		if len(f.key) > MaxArtifactName {
			d.errorf(nil, f.offset, fp, "artifact name too long: %d characters, at most %d (it names the artifact's directory)", len(f.key), MaxArtifactName)
			continue
		}
		if s, ok := d.relPath(f.value, fp); ok {
			out = append(out, Output{Name: f.key, Path: s})
			at[f.key] = f.offset
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, at
}

// article prefixes a type name with "a" or "an".
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) || word == "ssh" {
		return "an " + word
	}
	return "a " + word
}
