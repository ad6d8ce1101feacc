//go:build !linux

package local

import (
	"os"
	"syscall"
)

// growPipe keeps the system's pipe size where it cannot be changed.
func growPipe(uintptr) bool { return false }

func releasePipe() {}

// stepPipe returns a pipe for a step's output stream: its read end, made
// non-blocking and left to poll(2) (see streamSet), and the step's end.
func stepPipe() (r int, w *os.File, err error) {
	p, err := pipe()
	if err != nil {
		return -1, nil, err
	}
	if err := syscall.SetNonblock(p[0], true); err != nil {
		syscall.Close(p[0])
		syscall.Close(p[1])
		return -1, nil, os.NewSyscallError("fcntl", err)
	}
	return p[0], os.NewFile(uintptr(p[1]), "|1"), nil
}

// pipe makes a pipe whose ends are closed on exec.
func pipe() ([2]int, error) {
	var p [2]int
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := syscall.Pipe(p[:]); err != nil {
		return p, os.NewSyscallError("pipe", err)
	}
	syscall.CloseOnExec(p[0])
	syscall.CloseOnExec(p[1])
	return p, nil
}

// A waker wakes a copier waiting in poll(2): a pipe, readable once
// written to.
type waker [2]int

func newWaker() (waker, error) {
	p, err := pipe()
	if err != nil {
		return waker{-1, -1}, err
	}
	_ = syscall.SetNonblock(p[1], true)
	return waker(p), nil
}

func (w waker) fd() int { return w[0] }

func (w waker) wake() { _, _ = syscall.Write(w[1], []byte{1}) }

func (w waker) close() {
	syscall.Close(w[0])
	syscall.Close(w[1])
}

// pipeCapacity returns at least the capacity of a pipe here: the
// systems without F_GETPIPE_SZ keep theirs well below maxHold.
func pipeCapacity(uintptr) int { return maxHold }
