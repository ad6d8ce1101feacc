package compiler

// OCIExecutor runs steps in docker or podman containers.
type OCIExecutor struct {
	Image   string   `json:"image"`
	Runtime string   `json:"runtime"`
	Mode    string   `json:"mode"`
	Volumes []string `json:"volumes,omitempty"`
	Options []string `json:"options,omitempty"`
}

var ociKind = executorKind{
	fields: []string{"image", "runtime", "mode", "volumes", "options"},
	decode: func(o *execFields, e *Executor) {
		e.OCI = &OCIExecutor{
			Image:   o.reqStr("image"),
			Runtime: o.enum("runtime", "auto", []string{"auto", "docker", "podman"}),
			Mode:    o.enum("mode", "isolated", []string{"isolated", "shared"}),
			Volumes: o.optList("volumes"),
			Options: o.optList("options"),
		}
	},
}
