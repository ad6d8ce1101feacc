//go:build !linux

package watchdog

import "os"

// executable is this program's file, where it was when it started.
func executable() (string, error) { return os.Executable() }
