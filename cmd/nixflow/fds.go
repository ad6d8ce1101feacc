package main

import (
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// keepInheritedFDs marks every descriptor nixflow inherited, but 0, 1 and
// 2, close-on-exec: what nixflow runs (steps, conditions, providers) gets
// only those three, as the compiled script's steps do. Through another
// one (`nixflow run 3>&1` in a script, a CI runner's pipe) a step could
// write around masking, or hold its caller's pipe open after the run.
// They are kept in givenFDs: one may be where a report goes
// (--junit /dev/fd/3 3>report.xml).
func keepInheritedFDs() {
	// /proc/self/fd on Linux, /dev/fd elsewhere; the listing's own
	// descriptor is close-on-exec already.
	entries, err := os.ReadDir("/dev/fd")
	if err != nil {
		return
	}
	givenFDs = map[int]bool{}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		if open, cloexec := fdState(fd); open && !cloexec {
			givenFDs[fd] = true
			syscall.CloseOnExec(fd)
		}
	}
}

// fdState tells whether fd is open, and then whether it is close-on-exec.
func fdState(fd int) (open, cloexec bool) {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil, err == nil && flags&unix.FD_CLOEXEC != 0
}

// givenFDs are the descriptors nixflow was started with, but 0, 1 and 2
// (set by keepInheritedFDs).
var givenFDs map[int]bool
