package executors

import (
	"os/exec"
	"syscall"
)

// OwnGroup starts cmd, a process nixflow runs on a step's behalf (an ssh
// or container client, a mount daemon, git), in a process group of its
// own. Ctrl-C in a terminal signals the terminal's whole foreground
// group, which nixflow leads: a client in it would die at once, and its
// job fail as if its host were lost (or end early, its step cut short),
// where nixflow decides what each step gets and lets cleanup jobs run.
// It returns cmd.
func OwnGroup(cmd *exec.Cmd) *exec.Cmd {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	return cmd
}
