package ec2

import (
	"errors"

	"github.com/nixflow/nixflow/executors"
)

// connectSSH is the SSH executor for a launched instance.
func connectSSH(t Target, p executors.Params) (executors.Executor, error) {
	return nil, errors.New("the ssh executor is not part of this build")
}
