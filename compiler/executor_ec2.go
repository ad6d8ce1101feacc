package compiler

import (
	"time"

	"github.com/nixflow/nixflow/timing"
)

// EC2Executor runs steps on an ephemeral EC2 instance.
type EC2Executor struct {
	Region  string `json:"region"`
	AMI     string `json:"ami,omitempty"`
	Machine string `json:"machine,omitempty"`
	// MachineDrv is the derivation that builds Machine, when the workflow
	// gave one: nixflow realises it when Machine is not on this machine.
	MachineDrv       string            `json:"machineDrv,omitempty"`
	InstanceType     string            `json:"instanceType"`
	SubnetID         string            `json:"subnetId,omitempty"`
	SecurityGroupIDs []string          `json:"securityGroupIds,omitempty"`
	KeyName          string            `json:"keyName,omitempty"`
	SSHUser          string            `json:"sshUser"`
	SSHPort          int               `json:"sshPort"`
	Address          string            `json:"address"`
	Spot             bool              `json:"spot,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
	RootVolumeSize   int               `json:"rootVolumeSize,omitempty"`
	Endpoint         string            `json:"endpoint,omitempty"`
	MaxLifetime      timing.Duration   `json:"maxLifetime"`
	Mode             string            `json:"mode"`
}

// defaultEC2Lifetime is how long an instance may live when maxLifetime is
// not given: its shutdown timer ends it then, whatever happened to nixflow.
const defaultEC2Lifetime = timing.Duration(2 * time.Hour)

var ec2Kind = executorKind{
	fields: []string{"region", "ami", "machine", "machineDrv", "instanceType", "subnetId", "securityGroupIds",
		"keyName", "sshUser", "sshPort", "address", "spot", "tags", "rootVolumeSize", "endpoint", "maxLifetime", "mode"},
	decode: func(o *execFields, e *Executor) {
		c := &EC2Executor{
			Region:           o.reqStr("region"),
			AMI:              o.optStr("ami"),
			Machine:          o.optStr("machine"),
			MachineDrv:       o.optStr("machineDrv"),
			InstanceType:     o.reqStr("instanceType"),
			SubnetID:         o.optStr("subnetId"),
			SecurityGroupIDs: o.optList("securityGroupIds"),
			KeyName:          o.optStr("keyName"),
			SSHUser:          o.reqStr("sshUser"),
			SSHPort:          o.integer("sshPort", 1, 65535),
			Address:          o.enum("address", "auto", []string{"auto", "public", "private"}),
			Endpoint:         o.optStr("endpoint"),
			Spot:             o.boolean("spot"),
			Tags:             o.stringMap("tags"),
			RootVolumeSize:   o.integer("rootVolumeSize", 1, 65536),
			MaxLifetime:      o.duration("maxLifetime", "null keeps the default, 2h: an instance always has a shutdown timer"),
			Mode:             o.enum("mode", "isolated", []string{"isolated", "shared"}),
		}
		if c.SSHPort == 0 {
			c.SSHPort = 22
		}
		if c.MaxLifetime == 0 {
			c.MaxLifetime = defaultEC2Lifetime
		}
		if (c.AMI == "") == (c.Machine == "") {
			o.errorf("an ec2 executor needs exactly one of %q and %q", "ami", "machine")
		}
		if c.MachineDrv != "" && c.Machine == "" {
			o.errorf("%q is only meaningful with %q", "machineDrv", "machine")
		}
		e.EC2 = c
	},
}
