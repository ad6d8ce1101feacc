package main

import (
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/ec2"
	"github.com/nixflow/nixflow/executors/local"
	"github.com/nixflow/nixflow/executors/ssh"
)

// registry lists every executor backend of this build, in one place.
func registry() *executors.Registry {
	r := executors.NewRegistry()
	r.Register("local", local.New)
	r.Register("ssh", ssh.New)
	r.Register("ec2", ec2.New)
	return r
}
