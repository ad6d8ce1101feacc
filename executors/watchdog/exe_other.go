//go:build !linux

package watchdog

import "os"

// executable is this program's file, where it was when it started.
func executable() (string, error) { return os.Executable() }

// sentinelFiles: the sentinel runs nixflow from /proc, which only Linux
// has; elsewhere the guard waits as nixflow.
func sentinelFiles() (notes, exe *os.File) { return nil, nil }
