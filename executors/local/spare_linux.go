package local

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// spareSupported tells that directories can serve later jobs here.
const spareSupported = true

// madeDir is what a directory the executor made, and the files it made
// in it, were like then.
type madeDir struct {
	dir fileID
	// names are the files', sorted; files what they were like.
	names []string
	files []fileID
}

// fileID is what tells a file as made from one changed or replaced.
type fileID struct {
	dev, ino uint64
	mode     uint32 // type, permissions, setuid, setgid, sticky
	uid, gid uint32
	// flags are the attribute flags a user can set (chattr), flagsErr
	// why they could not be read (a file system without them).
	flags    uint32
	flagsErr syscall.Errno
	// xattrs are the extended attributes (an ACL is one), names and
	// values.
	xattrs string
}

// userFlags are the attribute flags a user can change (the kernel's
// FS_FL_USER_MODIFIABLE); the file system sets others itself (an
// indexed directory, inline data).
const userFlags = 0x000380ff

// identify returns the fileID of the open file fd, and its size and
// number of links.
func identify(fd int) (id fileID, size int64, nlink uint64, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return id, 0, 0, err
	}
	id = fileID{dev: st.Dev, ino: st.Ino, mode: st.Mode, uid: st.Uid, gid: st.Gid}
	id.flags, err = unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	id.flags &= userFlags
	if err != nil {
		id.flagsErr, _ = err.(syscall.Errno)
	}
	if id.xattrs, err = xattrs(fd); err != nil {
		return id, 0, 0, err
	}
	return id, st.Size, uint64(st.Nlink), nil
}

// xattrs returns the extended attributes of fd, names and values, in a
// string: "" for none, the common case, in one system call. A file
// system without them has none.
func xattrs(fd int) (string, error) {
	var names [1024]byte
	n, err := unix.Flistxattr(fd, names[:])
	switch {
	case err == unix.ENOTSUP:
		return "", nil
	case err != nil:
		return "", err
	case n == 0:
		return "", nil
	}
	var b strings.Builder
	var value [4096]byte
	for name := range strings.SplitSeq(strings.TrimSuffix(string(names[:n]), "\x00"), "\x00") {
		v, err := unix.Fgetxattr(fd, name, value[:])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s=%q\x00", name, value[:v])
	}
	return b.String(), nil
}

// recordDir records what dir, just made, is like, after making the
// files named in it: nil if it cannot (the directory then serves its
// job only).
func recordDir(dir string, names []string) *madeDir {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	m := &madeDir{names: slices.Sorted(slices.Values(names))}
	if m.dir, _, _, err = identify(fd); err != nil {
		return nil
	}
	for _, name := range m.names {
		f, err := unix.Openat(fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o666)
		if err != nil {
			return nil
		}
		id, _, _, err := identify(f)
		unix.Close(f)
		if err != nil {
			return nil
		}
		m.files = append(m.files, id)
	}
	return m
}

// emptied reports whether dir is still as m records it, holding nothing
// but its files, each with one link; it truncates the files. It works
// on what it opened, not by path, so that nothing swapped in meanwhile
// (a symbolic link to elsewhere) is emptied. Nothing of the job is left
// to add to the directory meanwhile (see workspace.tainted).
func (m *madeDir) emptied(dir string) bool {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if id, _, _, err := identify(fd); err != nil || id != m.dir || !m.holdsOnly(fd) {
		return false
	}
	for i, name := range m.names {
		if !truncateMade(fd, name, m.files[i]) {
			return false
		}
	}
	return true
}

// truncateMade empties the file name of directory fd, if it is as id
// records it, with one link.
func truncateMade(dirfd int, name string, id fileID) bool {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	got, size, nlink, err := identify(fd)
	if err != nil || got != id || nlink != 1 {
		return false
	}
	return size == 0 || unix.Ftruncate(fd, 0) == nil
}

// holdsOnly reports whether directory fd holds exactly m's files.
func (m *madeDir) holdsOnly(fd int) bool {
	names, err := readNames(fd, len(m.names))
	if err != nil {
		return false
	}
	slices.Sort(names)
	return slices.Equal(names, m.names)
}

// is reports whether path is the directory m records.
func (m *madeDir) is(path string) bool {
	var st unix.Stat_t
	return unix.Lstat(path, &st) == nil && st.Dev == m.dir.dev && st.Ino == m.dir.ino
}

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
