package actions

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"syscall"
	"time"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
)

// hostFunc runs a short bash command on this machine: runHost or
// plainHost.
type hostFunc func(ctx context.Context, script string, env []string, dir string, stdout *bytes.Buffer) (int, string, error)

// plainHost runs a short bash command on the machine running nixflow (job
// conditions, command providers), in its own process group, stdin closed.
// Cancelling ctx kills the group. It returns the exit code; err is set only
// when bash could not be run at all.
func plainHost(ctx context.Context, script string, env []string, dir string, stdout *bytes.Buffer) (int, string, error) {
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-c", script)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	executors.OwnGroupContext(cmd)
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if cmd.Process != nil {
		// Nothing the command started may outlive it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String(), nil
	case ctx.Err() != nil:
		// Killed because ctx ended: not the command's own exit status.
		return -1, stderr.String(), ctx.Err()
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), stderr.String(), nil
		}
		return exit.ExitCode(), stderr.String(), nil
	default:
		return -1, stderr.String(), err
	}
}

// resolveProviders runs providers with the engine's host runner. The
// first Ctrl-C stops them: a slow secret manager must not keep a
// cancelled run waiting.
func (e *engine) resolveProviders(where string, ps []compiler.Provider) (*providerResult, error) {
	return resolveProviders(e.cancel, e.runHost, where, ps, e.opts.RepoDir, e.opts.Environ)
}

// runHost runs a short bash command on this machine through
// Options.RunHost, stopped like a step when ctx is done; without it,
// with plainHost. It returns like plainHost.
func (e *engine) runHost(ctx context.Context, script string, env []string, dir string, stdout *bytes.Buffer) (int, string, error) {
	if e.opts.RunHost == nil {
		return plainHost(ctx, script, env, dir, stdout)
	}
	var stderr bytes.Buffer
	res, err := e.opts.RunHost(ctx, dir, executors.Command{
		Argv: []string{"bash", "--noprofile", "--norc", "-c", script}, Env: env,
		Stdout: stdout, Stderr: &stderr,
		Stop: func() executors.Signals {
			return executors.Signals{FirstSignalInterrupt: e.cancel.Err() != nil,
				InterruptGrace: e.opts.InterruptGrace, TerminateGrace: e.opts.TerminateGrace, Hurry: e.abort.Done()}
		},
	})
	switch {
	case err != nil:
		return -1, stderr.String(), err
	case res.Stopped:
		return -1, stderr.String(), context.Cause(ctx)
	}
	return res.ExitCode, stderr.String(), nil
}
