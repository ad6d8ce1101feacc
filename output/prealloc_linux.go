package output

import (
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves n bytes of disk for f from off on, without
// changing its size, so that writing a long log does not allocate its
// blocks a write at a time.
func preallocate(f *os.File, off, n int64) error {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, off, n)
}
