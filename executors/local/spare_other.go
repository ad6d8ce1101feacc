//go:build !linux

package local

import "errors"

// renameNew is not needed where spare directories are not kept: a rename
// that does not replace takes a system call of each system's own.
func renameNew(old, new string) error { return errors.ErrUnsupported }
