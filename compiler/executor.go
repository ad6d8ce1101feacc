package compiler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nixflow/nixflow/timing"
)

// Executor is an executor configuration. Type selects the backend; exactly
// the field of that type is set.
type Executor struct {
	Type string `json:"type"`
	// Name distinguishes executors of the same type (and, for shared OCI
	// containers, which jobs share one).
	Name     string `json:"name,omitempty"`
	CopyRepo bool   `json:"copyRepo"`

	Local *LocalExecutor `json:"-"`
	OCI   *OCIExecutor   `json:"oci,omitempty"`
	SSH   *SSHExecutor   `json:"ssh,omitempty"`
	EC2   *EC2Executor   `json:"ec2,omitempty"`
	// Custom is the user's own executor, driven by bash hooks.
	Custom *CustomExecutor `json:"custom,omitempty"`

	// typeAt is where the type was given, for errors found after decoding
	// (a type this build has no backend for); typeFile is empty when it
	// was not.
	typeFile          string
	typeLine, typeCol int
}

// Config returns the type-specific configuration, for the backend's
// factory.
func (e Executor) Config() any {
	switch e.Type {
	case "oci":
		return e.OCI
	case "ssh":
		return e.SSH
	case "ec2":
		return e.EC2
	case "custom":
		return e.Custom
	default:
		return e.Local
	}
}

// LocalExecutor runs steps on the machine running nixflow.
type LocalExecutor struct{}

// executorKind is how one executor type is decoded: the fields it knows
// besides the common ones, and a function that fills its configuration
// (nil for none).
type executorKind struct {
	fields []string
	decode func(o *execFields, e *Executor)
}

// executorKinds lists every executor type of the JSON graph. A backend's
// options are one entry here and one file (executor_<type>.go).
var executorKinds = map[string]executorKind{
	"local":  {}, // no fields of its own, nothing to decode
	"oci":    ociKind,
	"ssh":    sshKind,
	"ec2":    ec2Kind,
	"custom": customKind,
}

// executorCommonFields are the fields of every executor type.
var executorCommonFields = []string{"type", "name", "copyRepo"}

// executorTypes lists the types in the order messages name them: local
// first, then by how far from this machine the steps run.
func executorTypes() []string {
	order := map[string]int{"local": 0, "oci": 1, "ssh": 2, "ec2": 3, "custom": 4}
	types := make([]string, 0, len(executorKinds))
	for t := range executorKinds {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool {
		oi, iok := order[types[i]]
		oj, jok := order[types[j]]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return types[i] < types[j]
	})
	return types
}

func (d *decoder) executor(n *node, p jsonPath) Executor {
	e := Executor{Type: "local", CopyRepo: true, Local: &LocalExecutor{}}
	if n.kind != kindObject {
		d.typeError(n, p, "an executor object")
		return e
	}
	tn := n.get("type")
	if tn == nil {
		d.at(n, p, "missing required field %q (known: %s)", "type", strings.Join(executorTypes(), ", "))
		return e
	}
	typ, ok := d.str(tn, p.field("type"))
	if !ok {
		return e
	}
	kind, ok := executorKinds[typ]
	if !ok {
		// The list is sorted for messages only: a job of a known type
		// does not pay for it.
		types := executorTypes()
		hint := didYouMean(typ, types)
		if typ == "docker" || typ == "podman" {
			hint = fmt.Sprintf(" (containers are type \"oci\" with runtime %q)", typ)
		}
		d.at(tn, p.field("type"), "unknown executor type %q%s (known: %s)", typ, hint, strings.Join(types, ", "))
		return e
	}
	fields, ok := d.object(n, p, append(append([]string(nil), executorCommonFields...), kind.fields...), nil)
	if !ok {
		return e
	}
	e.Type = typ
	e.typeFile = d.file
	e.typeLine, e.typeCol = d.position(tn.offset)
	if v := fields.get("name"); v != nil && v.kind != kindNull {
		e.Name, _ = d.nonEmpty(v, p.field("name"))
	}
	if v := fields.get("copyRepo"); v != nil {
		e.CopyRepo, _ = d.boolean(v, p.field("copyRepo"))
	}
	if kind.decode != nil {
		// Called through a func value, kind.decode may keep what it is
		// given: it gets p detached from the caller's stack.
		e.Local = nil
		kind.decode(&execFields{d: d, n: n, p: p.detached(), typ: typ, fields: fields}, &e)
	}
	return e
}

// execFields reads the fields of one executor object, reporting problems
// at their positions.
type execFields struct {
	d      *decoder
	n      *node
	p      jsonPath // detached: the decode of a kind may keep it
	typ    string
	fields fieldSet
}

// get returns the field's node, or nil when it is absent or null.
func (o *execFields) get(key string) *node {
	if v := o.fields.get(key); v != nil && v.kind != kindNull {
		return v
	}
	return nil
}

func (o *execFields) path(key string) jsonPath { return o.p.field(key) }

// errorf reports a problem with the executor object as a whole.
func (o *execFields) errorf(format string, args ...any) { o.d.at(o.n, o.p, format, args...) }

func (o *execFields) optStr(key string) string {
	if v := o.get(key); v != nil {
		s, _ := o.d.nonEmpty(v, o.path(key))
		return s
	}
	return ""
}

func (o *execFields) reqStr(key string) string {
	if o.get(key) == nil {
		o.errorf("missing required field %q for %s executor", key, article(o.typ))
		return ""
	}
	return o.optStr(key)
}

func (o *execFields) optList(key string) []string {
	if v := o.fields.get(key); v != nil {
		l, _ := o.d.stringList(v, o.path(key))
		return l
	}
	return nil
}

func (o *execFields) enum(key, def string, allowed []string) string {
	s := o.optStr(key)
	if s == "" {
		return def
	}
	if !contains(allowed, s) {
		o.d.at(o.fields.get(key), o.path(key), "unknown %s %q%s (known: %s)", key, s, didYouMean(s, allowed), strings.Join(allowed, ", "))
		return def
	}
	return s
}

func (o *execFields) boolean(key string) bool {
	if v := o.fields.get(key); v != nil {
		b, _ := o.d.boolean(v, o.path(key))
		return b
	}
	return false
}

func (o *execFields) integer(key string, lo, hi int) int {
	if v := o.get(key); v != nil {
		i, _ := o.d.integer(v, o.path(key), lo, hi)
		return i
	}
	return 0
}

func (o *execFields) stringMap(key string) map[string]string {
	if v := o.fields.get(key); v != nil {
		return o.d.stringMap(v, o.path(key))
	}
	return nil
}

func (o *execFields) duration(key, nullHint string) timing.Duration {
	if v := o.fields.get(key); v != nil {
		d, _, _ := o.d.positiveDuration(v, o.path(key), nullHint)
		return d
	}
	return 0
}

// CheckExecutors reports, as a positioned ErrorList, every job whose
// executor type is not among available (the backends of this build).
func (p *Plan) CheckExecutors(available []string) error {
	var errs ErrorList
	for _, j := range p.Jobs {
		if contains(available, j.Executor.Type) {
			continue
		}
		typePath := pathOf("jobs", j.Name, "executor", "type")
		e := &Error{File: j.Executor.typeFile, Line: j.Executor.typeLine, Col: j.Executor.typeCol,
			Path: typePath.String()}
		e.Msg = fmt.Sprintf("executor type %q has no backend in this build of nixflow (available: %s)",
			j.Executor.Type, strings.Join(available, ", "))
		errs = append(errs, e)
	}
	if len(errs) == 0 {
		return nil
	}
	errs.sort()
	return errs
}
