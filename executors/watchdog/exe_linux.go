package watchdog

import (
	"os"

	"golang.org/x/sys/unix"
)

// executable is this very program, even if its file was replaced or
// removed since it started (os.Executable names the path, whatever is
// there now).
func executable() (string, error) { return "/proc/self/exe", nil }

// sentinelFiles returns the sentinel's notes, a file in memory (nothing
// on a disk that could be full, nothing to remove whatever way nixflow
// ends), and this program, open; nil where either cannot be had: the
// guard then waits as nixflow (as it does when the shell cannot start).
func sentinelFiles() (notes, exe *os.File) {
	fd, err := unix.MemfdCreate("nixflow-watchdog-notes", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil
	}
	notes = os.NewFile(uintptr(fd), "watchdog notes")
	exe, err = os.Open("/proc/self/exe")
	if err != nil {
		notes.Close()
		return nil, nil
	}
	return notes, exe
}
