//go:build !linux

package local

import "os"

// growPipe keeps the system's pipe size where it cannot be changed.
func growPipe(uintptr) bool { return false }

func releasePipe() {}

// stepPipe returns a pipe for a step's output stream.
func stepPipe() (r, w *os.File, err error) { return os.Pipe() }

// pipeCapacity returns at least the capacity of a pipe here: the
// systems without F_GETPIPE_SZ keep theirs well below maxHold.
func pipeCapacity(uintptr) int { return maxHold }
