package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/watchdog"
)

// An OCI executor starts a guard (package watchdog) of kind "containers"
// with its runtime: if nixflow is killed with SIGKILL, or crashes, the
// guard removes the containers the executor made, at once, where the
// next run or `nixflow gc` would have found them later. Its arguments
// are the runtime's name and client, the executor's token, which labels
// its containers (LabelGuard: another executor's guard, or a reused pid,
// never takes them), and nixflow's pid (for its word).
//
// A create under way when nixflow died cannot be stopped: a podman
// killed during a create leaves a container no podman command lists
// (see cli.start). The executor notes each create on the guard's pipe,
// with the client's pid, and its end; the guard waits for the clients
// of the creates that had not ended, then looks again.
const containersKind = "containers"

func init() {
	watchdog.Register(containersKind, sweepOwned)
}

// createNote and createdNote are the notes of a create: its client
// started, as pid, and ended.
func createNote(name string, pid int) string { return "create " + name + " " + strconv.Itoa(pid) }
func createdNote(name string) string         { return "created " + name }

// pendingCreates returns the pids of the clients of the creates the
// notes started and did not end.
func pendingCreates(notes []string) []int {
	pids := map[string]int{}
	for _, n := range notes {
		f := strings.Fields(n)
		switch {
		case len(f) == 3 && f[0] == "create":
			if pid, err := strconv.Atoi(f[2]); err == nil {
				pids[f[1]] = pid
			}
		case len(f) == 2 && f[0] == "created":
			delete(pids, f[1])
		}
	}
	var pending []int
	for _, pid := range pids {
		pending = append(pending, pid)
	}
	return pending
}

// sweepOwned is the guard's sweeper: it removes the containers of the
// gone nixflow, then, if creates were under way, waits for their
// clients to end and removes what they made.
func sweepOwned(args, notes []string) {
	if len(args) != 4 || args[2] == "" {
		return
	}
	c := &cli{name: args[0], path: args[1]} // the guard's environment is the client's
	token, owner := args[2], args[3]
	ctx, cancel := context.WithTimeout(context.Background(), createTimeout+2*teardownTimeout)
	defer cancel()
	n, err := removeGuarded(ctx, c, token)
	if pending := pendingCreates(notes); len(pending) > 0 {
		for _, pid := range pending {
			for clientRunning(pid) && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
			}
		}
		m, err2 := removeGuarded(ctx, c, token)
		n, err = n+m, err2
	}
	if n > 0 {
		fmt.Fprintf(os.Stderr, "nixflow: watchdog: removed %s of nixflow process %s, which was killed\n",
			executors.Count(n, c.name+" container", c.name+" containers"), owner)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nixflow: watchdog: remove the %s containers of nixflow process %s, which was killed: %v\nhint: nixflow gc removes them\n", c.name, owner, err)
	}
}

// removeGuarded removes the containers labelled with the guard's token,
// and returns how many.
func removeGuarded(ctx context.Context, c *cli, token string) (int, error) {
	ids, err := c.containers(ctx, "label="+LabelGuard+"="+token)
	if err != nil {
		return 0, err
	}
	if err := c.remove(ctx, ids...); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// clientRunning reports whether process pid (a client of the gone
// nixflow, so no child of this process) still runs: a zombie, which no
// one reaps where there is no init, does not.
func clientRunning(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return processState(pid) != 'Z'
}
