package local

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameNew renames old to new, which must not exist (an empty directory
// would be replaced by rename(2)). It fails with errors.ErrUnsupported
// where the file system cannot (some network file systems).
func renameNew(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		err = errors.ErrUnsupported
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}
