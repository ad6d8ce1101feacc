package executors

import (
	"os/exec"
	"syscall"
	"time"
)

// OwnGroup starts cmd, a process nixflow runs on a step's behalf (an ssh
// or container client, a mount daemon, git, a build), in a session and
// process group of its own. Ctrl-C in a terminal signals the terminal's
// whole foreground group, which nixflow leads: a client in it would die
// at once, and its job fail as if its host were lost (or end early, its
// step cut short), where nixflow decides what each step gets and lets
// cleanup jobs run. Without a terminal of its own, a client that would
// prompt on /dev/tty (ssh asking for a passphrase) fails at once instead
// of being stopped for reading a terminal it is in the background of.
// It returns cmd.
func OwnGroup(cmd *exec.Cmd) *exec.Cmd {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	return cmd
}

// OwnGroupContext is OwnGroup for a command made with
// exec.CommandContext: when its context ends, the whole group is killed
// (what the client started too, an ssh under nix-copy-closure, which would
// hold its output open), and Wait waits at most WaitDelay (5 s unless
// set) for its output after that.
func OwnGroupContext(cmd *exec.Cmd) *exec.Cmd {
	OwnGroup(cmd)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	return cmd
}
