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

	"github.com/nixflow/nixflow/executors/watchdog"
)

// An OCI executor starts a guard (package watchdog) of kind "containers"
// with its runtime: if nixflow is killed with SIGKILL, or crashes, the
// guard removes every container the nixflow process made on this host,
// at once, where the next run or `nixflow gc` would have found them
// later. Its arguments are the runtime's name and client, and nixflow's
// pid (the containers' LabelOwnerPID).
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
	if len(args) != 3 {
		return
	}
	owner, err := strconv.Atoi(args[2])
	if err != nil {
		return
	}
	c := &cli{name: args[0], path: args[1]} // the guard's environment is the client's
	ctx, cancel := context.WithTimeout(context.Background(), createTimeout+2*teardownTimeout)
	defer cancel()
	n, err := removeOwned(ctx, c, owner)
	if pending := pendingCreates(notes); len(pending) > 0 && err == nil {
		for _, pid := range pending {
			for clientRunning(pid) && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
			}
		}
		var m int
		m, err = removeOwned(ctx, c, owner)
		n += m
	}
	if n > 0 {
		noun := "containers"
		if n == 1 {
			noun = "container"
		}
		fmt.Fprintf(os.Stderr, "nixflow: watchdog: removed %d %s %s of nixflow process %d, which was killed\n", n, c.name, noun, owner)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nixflow: watchdog: remove the %s containers of nixflow process %d, which was killed: %v\nhint: nixflow gc removes them\n", c.name, owner, err)
	}
}

// removeOwned removes the containers owner made on this host, and
// returns how many.
func removeOwned(ctx context.Context, c *cli, owner int) (int, error) {
	ids, err := c.owned(ctx, owner, "")
	if err == nil {
		err = c.remove(ctx, ids...)
	}
	if err != nil {
		return 0, err
	}
	return len(ids), nil
}

// owned lists the containers the nixflow process pid made on this host,
// of run runID (any run if empty).
func (c *cli) owned(ctx context.Context, pid int, runID string) ([]string, error) {
	args := []string{"ps", "--all", "--quiet", "--no-trunc",
		"--filter", "label=" + LabelOwnerPID + "=" + strconv.Itoa(pid),
		"--filter", "label=" + LabelHost + "=" + hostname()}
	if runID != "" {
		args = append(args, "--filter", "label="+LabelRun+"="+runID)
	}
	out, err := c.output(ctx, nil, args...)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
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
