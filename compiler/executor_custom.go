package compiler

// CustomExecutor runs steps wherever the user's own hooks put them: each
// hook is a bash script that nixflow runs on this machine at one point of
// the executor contract (see docs/executors.md, "Custom executors").
type CustomExecutor struct {
	// Workdir is the directory, as the steps see it, under which job
	// workspaces are made; empty means a directory of the run on this
	// machine.
	Workdir string      `json:"workdir,omitempty"`
	Hooks   CustomHooks `json:"hooks"`
}

// CustomHooks are the bash scripts of a custom executor, named as in
// nixactions' mkExecutor. Empty hooks do nothing.
type CustomHooks struct {
	SetupWorkspace   string `json:"setupWorkspace,omitempty"`
	SetupJob         string `json:"setupJob,omitempty"`
	ExecuteJob       string `json:"executeJob"`
	SaveArtifact     string `json:"saveArtifact"`
	RestoreArtifact  string `json:"restoreArtifact"`
	CleanupJob       string `json:"cleanupJob,omitempty"`
	CleanupWorkspace string `json:"cleanupWorkspace,omitempty"`
}

// customHookFields lists the hooks in the order they run; the first ones
// are optional.
var (
	customHookRequired = []string{"executeJob", "saveArtifact", "restoreArtifact"}
	customHookFields   = []string{"setupWorkspace", "setupJob", "executeJob", "saveArtifact", "restoreArtifact", "cleanupJob", "cleanupWorkspace"}
)

var customKind = executorKind{
	fields: []string{"workdir", "hooks"},
	decode: func(o *execFields, e *Executor) {
		c := &CustomExecutor{Workdir: o.optStr("workdir")}
		e.Custom = c
		n := o.get("hooks")
		if n == nil {
			o.errorf("missing required field %q for a custom executor", "hooks")
			return
		}
		p := o.path("hooks")
		fields, ok := o.d.object(n, p, customHookFields, nil)
		if !ok {
			return
		}
		hook := func(key string) string {
			v := fields.get(key)
			if v == nil || v.kind == kindNull {
				if contains(customHookRequired, key) {
					o.d.at(n, p, "missing required hook %q", key)
				}
				return ""
			}
			s, _ := o.d.str(v, p.field(key))
			return s
		}
		c.Hooks = CustomHooks{
			SetupWorkspace:   hook("setupWorkspace"),
			SetupJob:         hook("setupJob"),
			ExecuteJob:       hook("executeJob"),
			SaveArtifact:     hook("saveArtifact"),
			RestoreArtifact:  hook("restoreArtifact"),
			CleanupJob:       hook("cleanupJob"),
			CleanupWorkspace: hook("cleanupWorkspace"),
		}
	},
}
