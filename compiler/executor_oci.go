package compiler

import "path"

// OCIExecutor runs steps in docker or podman containers.
type OCIExecutor struct {
	// Image is the image the containers start from. Empty: nixflow
	// assembles one from the Nix closure of the job's deps.
	Image   string `json:"image,omitempty"`
	Runtime string `json:"runtime"`
	Mode    string `json:"mode"`
	// User runs the container and its steps as this user ("1000:1000",
	// "node"); empty: the image's user.
	User string `json:"user,omitempty"`
	// Workdir is where the workspace is mounted in the container.
	Workdir string   `json:"workdir"`
	Volumes []string `json:"volumes,omitempty"`
	Options []string `json:"options,omitempty"`
}

// defaultOCIWorkdir is where the workspace is mounted unless the workflow
// says otherwise.
const defaultOCIWorkdir = "/workspace"

var ociKind = executorKind{
	fields: []string{"image", "runtime", "mode", "user", "workdir", "volumes", "options"},
	decode: func(o *execFields, e *Executor) {
		c := &OCIExecutor{
			Image:   o.optStr("image"),
			Runtime: o.enum("runtime", "auto", []string{"auto", "docker", "podman"}),
			Mode:    o.enum("mode", "isolated", []string{"isolated", "shared"}),
			User:    o.optStr("user"),
			Workdir: o.optStr("workdir"),
			Volumes: o.optList("volumes"),
			Options: o.optList("options"),
		}
		if c.Workdir == "" {
			c.Workdir = defaultOCIWorkdir
		} else if !path.IsAbs(c.Workdir) || path.Clean(c.Workdir) != c.Workdir || c.Workdir == "/" {
			o.d.at(o.fields.get("workdir"), o.path("workdir"), "must be an absolute path other than /, got %q", c.Workdir)
		}
		e.OCI = c
	},
}
