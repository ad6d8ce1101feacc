package local

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// pipeSize is the capacity asked for a step's output pipes: a step that
// writes fast then blocks less often on nixflow reading, and nixflow reads
// more per system call. 1 MiB is Linux's default limit for unprivileged
// processes (/proc/sys/fs/pipe-max-size).
const pipeSize = 1 << 20

// growPipe enlarges the pipe of r, if the kernel allows; the default
// 64 KiB is kept otherwise.
func growPipe(r *os.File) {
	if rc, err := r.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize)
		})
	}
}

// stepPipe returns a pipe whose read end nixflow polls and whose write
// end goes to the step. os.Pipe would make both ends non-blocking and
// register them with the poller, then exec would make the step's end
// blocking again: a few system calls per stream and step.
func stepPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	if err := syscall.SetNonblock(p[0], true); err != nil {
		syscall.Close(p[0])
		syscall.Close(p[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	// NewFile registers a non-blocking descriptor with the poller.
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}
