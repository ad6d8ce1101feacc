//go:build !linux

package local

// removeDir removes dir and everything below it.
func removeDir(dir string) error { return removeTree(dir) }
