package compiler

import (
	"fmt"
	"strings"
)

// SSHExecutor runs steps on a host, or a pool of hosts, reached with the
// OpenSSH client. Exactly one of Host and Hosts is set.
type SSHExecutor struct {
	Host string `json:"host,omitempty"`
	// Hosts is a pool: jobs are spread over them, each taking at most its
	// MaxJobs at a time.
	Hosts        []SSHHost `json:"hosts,omitempty"`
	User         string    `json:"user,omitempty"`
	Port         int       `json:"port,omitempty"`
	IdentityFile string    `json:"identityFile,omitempty"`
	Workdir      string    `json:"workdir,omitempty"`
	NixCopy      string    `json:"nixCopy"`
	Options      []string  `json:"options,omitempty"`
	// MaxJobs caps the jobs running on Host at a time (0: no cap); for a
	// pool it is the default of each host's (1 if not given).
	MaxJobs int `json:"maxJobs,omitempty"`
}

// SSHHost is one host of a pool. User, Port and IdentityFile default to
// the executor's.
type SSHHost struct {
	Host         string `json:"host"`
	User         string `json:"user,omitempty"`
	Port         int    `json:"port,omitempty"`
	IdentityFile string `json:"identityFile,omitempty"`
	MaxJobs      int    `json:"maxJobs"`
}

// maxJobsLimit bounds maxJobs, against typos.
const maxJobsLimit = 1024

var sshKind = executorKind{
	fields: []string{"host", "hosts", "user", "port", "identityFile", "workdir", "nixCopy", "options", "maxJobs"},
	decode: func(o *execFields, e *Executor) {
		s := &SSHExecutor{
			User:         o.optStr("user"),
			Port:         o.integer("port", 1, 65535),
			IdentityFile: o.optStr("identityFile"),
			Workdir:      o.optStr("workdir"),
			Options:      o.optList("options"),
			MaxJobs:      o.integer("maxJobs", 1, maxJobsLimit),
			NixCopy:      "auto",
		}
		switch hosts := o.get("hosts"); {
		case hosts != nil && o.get("host") != nil:
			o.errorf("an ssh executor needs exactly one of %q and %q", "host", "hosts")
		case hosts != nil:
			s.Hosts = sshHosts(o, hosts, s.MaxJobs)
		default:
			s.Host = o.reqStr("host")
			sshName(o.d, o.get("host"), o.path("host"), "host", s.Host)
		}
		sshName(o.d, o.get("user"), o.path("user"), "user", s.User)
		if v := o.fields.get("nixCopy"); v != nil {
			switch v.kind {
			case kindBool:
				s.NixCopy = map[bool]string{true: "always", false: "never"}[v.boolean]
			case kindString, kindNull:
				s.NixCopy = o.enum("nixCopy", "auto", []string{"auto", "always", "never"})
			default:
				o.d.typeError(v, o.path("nixCopy"), `true, false, "auto", "always" or "never"`)
			}
		}
		e.SSH = s
	},
}

// sshHosts decodes a pool: host names, or objects with a host and its own
// user, port, identityFile and maxJobs.
func sshHosts(o *execFields, n *node, defaultMax int) []SSHHost {
	p := o.path("hosts")
	if n.kind != kindArray {
		o.d.typeError(n, p, "an array of host names or {host, maxJobs, ...}")
		return nil
	}
	if len(n.elems) == 0 {
		o.d.at(n, p, "must not be empty")
		return nil
	}
	if defaultMax == 0 {
		defaultMax = 1
	}
	d := o.d
	var out []SSHHost
	seen := map[string]bool{}
	for i, e := range n.elems {
		ep := p.elem(i)
		h := SSHHost{MaxJobs: defaultMax}
		switch e.kind {
		case kindString:
			s, ok := d.nonEmpty(e, ep)
			if !ok {
				continue
			}
			h.Host = s
			sshName(d, e, ep, "host", s)
		case kindObject:
			fields, ok := d.object(e, ep, []string{"host", "user", "port", "identityFile", "maxJobs"}, nil)
			if !ok {
				continue
			}
			v := fields.get("host")
			if v == nil {
				d.at(e, ep, "missing required field %q", "host")
				continue
			}
			if h.Host, ok = d.nonEmpty(v, ep.field("host")); !ok {
				continue
			}
			sshName(d, v, ep.field("host"), "host", h.Host)
			if v := fields.get("user"); v != nil {
				h.User, _ = d.nonEmpty(v, ep.field("user"))
				sshName(d, v, ep.field("user"), "user", h.User)
			}
			if v := fields.get("port"); v != nil {
				h.Port, _ = d.integer(v, ep.field("port"), 1, 65535)
			}
			if v := fields.get("identityFile"); v != nil {
				h.IdentityFile, _ = d.nonEmpty(v, ep.field("identityFile"))
			}
			if v := fields.get("maxJobs"); v != nil {
				h.MaxJobs, _ = d.integer(v, ep.field("maxJobs"), 1, maxJobsLimit)
			}
		default:
			d.typeError(e, ep, "a host name or {host, maxJobs, ...}")
			continue
		}
		key := fmt.Sprintf("%s@%s:%d", h.User, h.Host, h.Port)
		if seen[key] {
			d.at(e, ep, "duplicate host %q", h.Host)
			continue
		}
		seen[key] = true
		out = append(out, h)
	}
	return out
}

// sshName refuses a host or user name that ssh would read as an option
// (a leading -) or that cannot be one (blanks, NUL). (A user may hold an
// @, as a directory's users do: ssh gets it with -l.)
func sshName(d *decoder, n *node, p jsonPath, what, name string) {
	switch {
	case n == nil || name == "":
	case strings.HasPrefix(name, "-"):
		d.at(n, p, "invalid %s %q: it must not start with -", what, name)
	case strings.ContainsAny(name, " \t\n\x00"):
		d.at(n, p, "invalid %s %q: it must not hold blanks", what, name)
	}
}
