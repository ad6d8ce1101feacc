package actions

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// runHost runs a short bash command on the machine running nixflow (job
// conditions, command providers), in its own process group, stdin closed.
// Cancelling ctx kills the group. It returns the exit code; err is set only
// when bash could not be run at all.
func runHost(ctx context.Context, script string, env []string, dir string, stdout *bytes.Buffer) (int, string, error) {
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-c", script)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
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
