package local

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/nixflow/nixflow/executors"
)

// Host runs commands on this machine outside any job (job conditions,
// command providers), as Run runs a step in a workspace, with the same
// guarantees: a process group of its own, the signal escalation of
// cmd.Stop when ctx is done, no process it starts outliving it (process
// group, cookie), and a watchdog that stops them if nixflow is killed
// (started with the first command). Close stops the watchdog.
type Host struct {
	watch *guard
}

// NewHost returns a Host that logs to log (nil: nowhere) why it has no
// watchdog, if it cannot start one.
func NewHost(log hclog.Logger) *Host {
	return &Host{watch: newGuard(log)}
}

// Run runs cmd in dir, a directory of this machine.
func (h *Host) Run(ctx context.Context, dir string, cmd executors.Command) (executors.Result, error) {
	w := &workspace{dir: dir, drainTimeout: defaultDrainTimeout, watch: h.watch}
	return w.Run(ctx, cmd)
}

// Close stops the watchdog, once no command runs.
func (h *Host) Close() {
	h.watch.stop()
}
