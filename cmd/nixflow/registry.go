package main

import (
	"fmt"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/custom"
	"github.com/nixflow/nixflow/executors/ec2"
	"github.com/nixflow/nixflow/executors/local"
	"github.com/nixflow/nixflow/executors/oci"
	"github.com/nixflow/nixflow/executors/ssh"
)

// registry lists every executor backend of this build, in one place.
func registry() *executors.Registry {
	r := executors.NewRegistry()
	r.Register("local", local.New)
	r.Register("custom", newCustom)
	r.Register("oci", oci.New)
	r.Register("ssh", ssh.New)
	r.Register("ec2", ec2.New)
	return r
}

// newCustom hands the compiler's custom configuration to the backend,
// which knows nothing of the compiler.
func newCustom(p executors.Params) (executors.Executor, error) {
	c, ok := p.Config.(*compiler.CustomExecutor)
	if !ok || c == nil {
		return nil, fmt.Errorf("custom executor: configuration of type %T", p.Config)
	}
	h := c.Hooks
	p.Config = &custom.Config{Workdir: c.Workdir, Hooks: custom.Hooks{
		SetupWorkspace: h.SetupWorkspace, SetupJob: h.SetupJob, ExecuteJob: h.ExecuteJob,
		SaveArtifact: h.SaveArtifact, RestoreArtifact: h.RestoreArtifact,
		CleanupJob: h.CleanupJob, CleanupWorkspace: h.CleanupWorkspace,
	}}
	return custom.New(p)
}
