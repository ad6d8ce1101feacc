//go:build !linux

package main

import (
	"os"
	"testing"
)

// openPTY is Linux's /dev/ptmx dance; elsewhere the terminal tests skip.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	t.Skip("pseudo-terminal tests run on Linux")
	return nil, nil
}
