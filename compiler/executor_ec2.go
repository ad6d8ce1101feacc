package compiler

// EC2Executor runs steps on an ephemeral EC2 instance.
type EC2Executor struct {
	Region           string            `json:"region"`
	AMI              string            `json:"ami,omitempty"`
	Machine          string            `json:"machine,omitempty"`
	InstanceType     string            `json:"instanceType"`
	SubnetID         string            `json:"subnetId,omitempty"`
	SecurityGroupIDs []string          `json:"securityGroupIds,omitempty"`
	SSHUser          string            `json:"sshUser"`
	Spot             bool              `json:"spot,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
	Endpoint         string            `json:"endpoint,omitempty"`
	MaxLifetime      Duration          `json:"maxLifetime,omitempty"`
}

var ec2Kind = executorKind{
	fields: []string{"region", "ami", "machine", "instanceType", "subnetId", "securityGroupIds",
		"sshUser", "spot", "tags", "endpoint", "maxLifetime"},
	decode: func(o *execFields, e *Executor) {
		c := &EC2Executor{
			Region:           o.reqStr("region"),
			AMI:              o.optStr("ami"),
			Machine:          o.optStr("machine"),
			InstanceType:     o.reqStr("instanceType"),
			SubnetID:         o.optStr("subnetId"),
			SecurityGroupIDs: o.optList("securityGroupIds"),
			SSHUser:          o.reqStr("sshUser"),
			Endpoint:         o.optStr("endpoint"),
			Spot:             o.boolean("spot"),
			Tags:             o.stringMap("tags"),
			MaxLifetime:      o.duration("maxLifetime"),
		}
		if (c.AMI == "") == (c.Machine == "") {
			o.errorf("an ec2 executor needs exactly one of %q and %q", "ami", "machine")
		}
		e.EC2 = c
	},
}
