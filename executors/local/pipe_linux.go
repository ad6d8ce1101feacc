package local

import (
	"os"

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
