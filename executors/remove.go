package executors

import (
	"io/fs"
	"os"
	"path/filepath"
)

// RemoveTree removes dir and everything below it, also when a step left
// directories without write or search permission (a read-only tree, a
// chmod 555 directory), which os.RemoveAll alone cannot empty unless it
// runs as root.
func RemoveTree(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if info, err := d.Info(); err == nil && info.Mode().Perm()&0o700 != 0o700 {
				_ = os.Chmod(p, info.Mode().Perm()|0o700)
			}
		}
		return nil
	})
	return os.RemoveAll(dir)
}
