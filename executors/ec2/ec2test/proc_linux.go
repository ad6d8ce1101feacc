package ec2test

import "syscall"

// sysProcAttr puts a server in its own process group, killed with the
// test process.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
