package local

import (
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// pipeSize is the capacity a step's output pipe grows to when the step
// writes faster than nixflow reads: it then blocks less often, and
// nixflow reads more per system call. 1 MiB is Linux's default limit for
// unprivileged processes (/proc/sys/fs/pipe-max-size).
const pipeSize = 1 << 20

// passOn takes all a pipe holds.
var _ [maxHold - pipeSize]struct{}

// maxGrownPipes bounds the pipes grown at once. The pipes of an
// unprivileged user share a budget (/proc/sys/fs/pipe-user-pages-soft,
// 64 MiB by default), charged by capacity: once it is spent, every new
// pipe of that user gets 8 KiB, the steps' own `a | b` too. So a pipe
// grows only when its step writes fast, and 16 at most (16 MiB) are
// grown at a time.
const maxGrownPipes = 16

// grownPipes counts the pipes of this process grown to pipeSize.
var grownPipes atomic.Int32

// growPipe enlarges the pipe of fd to pipeSize if the budget and the
// kernel allow, and reports whether it did; releasePipe gives the budget
// back once the pipe is closed.
func growPipe(fd uintptr) bool {
	if grownPipes.Add(1) > maxGrownPipes {
		grownPipes.Add(-1)
		return false
	}
	if _, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize); err != nil {
		grownPipes.Add(-1)
		return false
	}
	return true
}

func releasePipe() { grownPipes.Add(-1) }

// stepPipe returns a pipe for a step's output stream: its read end, made
// non-blocking and left to poll(2) (see streamSet), and the step's end.
func stepPipe() (r int, w *os.File, err error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return -1, nil, os.NewSyscallError("pipe2", err)
	}
	if err := syscall.SetNonblock(p[0], true); err != nil {
		syscall.Close(p[0])
		syscall.Close(p[1])
		return -1, nil, os.NewSyscallError("fcntl", err)
	}
	// A blocking descriptor is not registered with Go's poller: exec
	// hands it to the step as it is.
	return p[0], os.NewFile(uintptr(p[1]), "|1"), nil
}

// A waker wakes a copier waiting in poll(2): an eventfd, readable once
// written to.
type waker int

func newWaker() (waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, os.NewSyscallError("eventfd", err)
	}
	return waker(fd), nil
}

func (w waker) fd() int { return int(w) }

func (w waker) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(int(w), one[:])
}

func (w waker) close() { unix.Close(int(w)) }

// pipeCapacity returns the capacity of fd's pipe, pipeSize if it cannot
// be read.
func pipeCapacity(fd uintptr) int {
	n, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0)
	if err != nil || n <= 0 {
		return pipeSize
	}
	return n
}
