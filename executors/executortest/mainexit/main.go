// Command mainexit is a process of the conformance suite: its main thread
// ends, and it lives on in its other threads, as a C program whose main
// calls pthread_exit does, and as one whose thread other than the main one
// executes a program is for a moment (the kernel ends the others, the main
// one first). Its pid then shows a zombie, and its environment reads
// empty or cannot be opened through it: a scan that looks for a step's
// processes by their environment must look through a thread that lives.
//
// It lives an hour, or until it is killed.
package main

import (
	"runtime"
	"syscall"
	"time"
)

// The main goroutine stays on the main thread: its raw exit ends that
// thread alone.
func init() { runtime.LockOSThread() }

func main() {
	go func() {
		time.Sleep(time.Hour)
		syscall.Exit(0)
	}()
	// Let the runtime start the threads that live on.
	time.Sleep(20 * time.Millisecond)
	syscall.RawSyscall(syscall.SYS_EXIT, 0, 0, 0)
}
