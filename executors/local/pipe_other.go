//go:build !linux

package local

import "os"

// growPipe keeps the system's pipe size where it cannot be changed.
func growPipe(uintptr) bool { return false }

func releasePipe() {}

// stepPipe returns a pipe for a step's output stream.
func stepPipe() (r, w *os.File, err error) { return os.Pipe() }
