package compiler

// SSHExecutor runs steps on a host reached with the OpenSSH client.
type SSHExecutor struct {
	Host         string   `json:"host"`
	User         string   `json:"user,omitempty"`
	Port         int      `json:"port,omitempty"`
	IdentityFile string   `json:"identityFile,omitempty"`
	Workdir      string   `json:"workdir,omitempty"`
	NixCopy      string   `json:"nixCopy"`
	Options      []string `json:"options,omitempty"`
}

var sshKind = executorKind{
	fields: []string{"host", "user", "port", "identityFile", "workdir", "nixCopy", "options"},
	decode: func(o *execFields, e *Executor) {
		s := &SSHExecutor{
			Host:         o.reqStr("host"),
			User:         o.optStr("user"),
			Port:         o.integer("port", 1, 65535),
			IdentityFile: o.optStr("identityFile"),
			Workdir:      o.optStr("workdir"),
			Options:      o.optList("options"),
			NixCopy:      "auto",
		}
		if v := o.fields["nixCopy"]; v != nil {
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
