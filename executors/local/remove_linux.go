//go:build linux

package local

import (
	"errors"
	"syscall"
)

// removeDir removes dir, which normally holds nothing but files (a
// temporary directory with its control files, an unused workspace),
// with a few plain system calls; anything else (a subdirectory, a file
// it may not remove) leaves the work to removeTree. os.RemoveAll would
// first try dir as a file, then as an empty directory, then open its
// parent, all of which a run of short jobs pays for every job.
func removeDir(dir string) error {
	err := syscall.Rmdir(dir)
	switch {
	case err == nil || err == syscall.ENOENT:
		return nil
	case err != syscall.ENOTEMPTY && err != syscall.EEXIST:
		return removeTree(dir)
	}
	if unlinkFiles(dir) != nil || syscall.Rmdir(dir) != nil {
		return removeTree(dir)
	}
	return nil
}

// unlinkFiles removes the entries of dir, as long as they are files.
func unlinkFiles(dir string) error {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	names, err := readNames(fd, -1)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := syscall.Unlinkat(fd, name); err != nil {
			return err
		}
	}
	if len(names) == 0 {
		return errors.New("no entries") // yet not empty: let removeTree see
	}
	return nil
}

// readNames returns the names in directory fd, or errTooMany once there
// are more than most (-1: any number).
func readNames(fd, most int) ([]string, error) {
	var buf [4096]byte
	var names []string
	for {
		n, err := syscall.ReadDirent(fd, buf[:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
		if most >= 0 && len(names) > most {
			return nil, errTooMany
		}
	}
}

var errTooMany = errors.New("too many entries")
