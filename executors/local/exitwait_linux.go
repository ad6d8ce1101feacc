package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// awaitExit returns once process pid, a child not yet waited for, has
// ended, without holding a thread: Go's poller waits for its pidfd,
// where the waitid(2) of exec.Cmd.Wait blocks a thread (and the runtime
// then hands that thread's P over to another, and takes one back when
// the step ends: at every step, a few system calls and a wake-up of the
// runtime's monitor). Without pidfds (Linux before 5.3) it returns at
// once, and Wait blocks.
func awaitExit(pid int) {
	fd, err := openPidfd(pid)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	// Readable once the process has ended; an error (a file the poller
	// cannot take) ends the wait, and Wait blocks.
	_ = rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return err != nil || n > 0
	})
}

// openPidfd opens a non-blocking pidfd of process pid: with
// PIDFD_NONBLOCK (Linux 5.10), else made so (5.3 to 5.9 refuse the flag).
func openPidfd(pid int) (int, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err == unix.EINVAL {
		if fd, err = unix.PidfdOpen(pid, 0); err == nil {
			if err = unix.SetNonblock(fd, true); err != nil {
				unix.Close(fd)
			}
		}
	}
	return fd, err
}
