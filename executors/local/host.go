package local

import (
	"context"

	"github.com/nixflow/nixflow/executors"
)

// RunHost runs cmd in dir, a directory of this machine, as Run runs a
// step in a workspace, with the same guarantees: a process group of its
// own, the signal escalation of cmd.Stop when ctx is done, and no
// process it starts outliving it (process group, cookie). nixflow runs
// job conditions and command providers with it.
func RunHost(ctx context.Context, dir string, cmd executors.Command) (executors.Result, error) {
	w := &workspace{dir: dir, drainTimeout: defaultDrainTimeout}
	return w.Run(ctx, cmd)
}
