package compiler

import (
	"path"
	"strings"
)

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

// OCIControlDir is the container's directory of nixflow's own (its
// control files are mounted at /nixflow/tmp): no workspace goes there.
const OCIControlDir = "/nixflow"

// ociRefusedOptions are container options the executor cannot work with,
// and why.
var ociRefusedOptions = map[string]string{
	// The reap after each step kills every process of the container's
	// pid namespace but its keep-alive.
	"--pid": "the executor kills what a step leaves behind by the container's process ids: in the host's or another container's process namespace, that would reach processes that are not the job's",
	// docker-init would be pid 1, and the keep-alive one of the
	// processes the reap kills.
	"--init": "the executor's keep-alive is the container's process 1, which --init takes; the container would stop after the first step",
}

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
		} else if c.Workdir == OCIControlDir || strings.HasPrefix(c.Workdir, OCIControlDir+"/") {
			o.d.at(o.fields.get("workdir"), o.path("workdir"), "%q is in %s, the directory of nixflow's control files: choose another, such as %s", c.Workdir, OCIControlDir, defaultOCIWorkdir)
		}
		if n := o.fields.get("options"); n != nil && n.kind == kindArray {
			p := o.path("options")
			for i, opt := range c.Options {
				name, value, inline := strings.Cut(opt, "=")
				if !inline && name == "--pid" && i+1 < len(c.Options) {
					value = c.Options[i+1] // --pid host
				}
				// --pid=private and --init=false are the defaults.
				harmless := name == "--pid" && value == "private" || name == "--init" && inline && value == "false"
				if why, ok := ociRefusedOptions[name]; ok && !harmless && i < len(n.elems) {
					o.d.at(n.elems[i], p.elem(i), "%s is not supported: %s", name, why)
				}
			}
		}
		e.OCI = c
	},
}
