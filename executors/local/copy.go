package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// This file holds the one tree copy of the package, used to fill a
// workspace from a repository, by CopyIn and by CopyOut. Both ends are
// os.Root values, so that a copy cannot be led outside the directories it
// works in by symbolic links met on the way.

// copyTree copies srcName in src (a regular file, a symbolic link or a
// directory tree) to dstName in dst, whose parent must exist. With follow,
// a symbolic link named by srcName itself is followed (within src);
// symbolic links below are always copied as links. skip, if not nil, is
// asked about every path below srcName, relative to it, and leaves out
// those it reports.
//
// A directory is merged into an existing directory at dstName, whose mode
// is left alone; directories the copy creates get their source's mode
// once their contents are copied. An existing non-directory at dstName is
// replaced. Regular files keep their mode, including the setuid, setgid
// and sticky bits. Sockets, FIFOs and devices are skipped.
func copyTree(ctx context.Context, src *os.Root, srcName string, follow bool, dst *os.Root, dstName string, skip func(rel string) bool) error {
	return (&treeCopy{ctx: ctx, skip: skip}).copy(src, srcName, follow, dst, dstName)
}

// mergeTree is copyTree, but for the mode of a directory it merges into
// (and for skip): that takes its source's mode too, as tar and cp -a
// extracting over it do. CopyIn merges artifacts so, on every backend.
func mergeTree(ctx context.Context, src *os.Root, srcName string, dst *os.Root, dstName string) error {
	return (&treeCopy{ctx: ctx, setModes: true}).copy(src, srcName, false, dst, dstName)
}

// treeCopy is one copyTree in progress.
type treeCopy struct {
	ctx      context.Context
	skip     func(rel string) bool
	setModes bool // a directory merged into takes its source's mode
}

func (c *treeCopy) copy(src *os.Root, srcName string, follow bool, dst *os.Root, dstName string) error {
	stat := src.Lstat
	if follow {
		stat = src.Stat
	}
	fi, err := stat(srcName)
	if err != nil {
		return err
	}
	return c.entry(src, srcName, fi.Mode(), dst, dstName, ".")
}

// entry copies one entry of type and mode mode; rel is its path relative
// to the top of the copy.
func (c *treeCopy) entry(src *os.Root, srcName string, mode fs.FileMode, dst *os.Root, dstName, rel string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	switch {
	case mode.IsDir():
		return c.dir(src, srcName, mode, dst, dstName, rel)
	case mode&fs.ModeSymlink != 0:
		return copySymlink(src, srcName, dst, dstName)
	case mode.IsRegular():
		return copyFile(src, srcName, mode, dst, dstName)
	default:
		return nil
	}
}

func (c *treeCopy) dir(src *os.Root, srcName string, mode fs.FileMode, dst *os.Root, dstName, rel string) error {
	created := true
	if err := dst.Mkdir(dstName, 0o700); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		fi, err := dst.Lstat(dstName)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%q exists and is not a directory", dstName)
		}
		created = false
	}
	sub, err := src.OpenRoot(srcName)
	if err != nil {
		return err
	}
	defer sub.Close()
	dsub, err := dst.OpenRoot(dstName)
	if err != nil {
		return err
	}
	defer dsub.Close()
	d, err := sub.Open(".")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, name := range names {
		crel := path.Join(rel, name)
		if c.skip != nil && c.skip(crel) {
			continue
		}
		fi, err := sub.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since listed
		}
		if err != nil {
			return err
		}
		if err := c.entry(sub, name, fi.Mode(), dsub, name, crel); err != nil {
			return err
		}
	}
	if created || c.setModes {
		return dst.Chmod(dstName, permBits(mode))
	}
	return nil
}

func copyFile(src *os.Root, srcName string, mode fs.FileMode, dst *os.Root, dstName string) error {
	in, err := src.Open(srcName)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := dst.OpenFile(dstName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// A file or link is replaced; a directory, even an empty one, is
		// in the way.
		if fi, err := dst.Lstat(dstName); err == nil && fi.IsDir() {
			return &fs.PathError{Op: "copy a file over", Path: dstName, Err: syscall.EISDIR}
		}
		if err := dst.Remove(dstName); err != nil {
			return err
		}
		out, err = dst.OpenFile(dstName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return err
	}
	// Between two *os.File, io.Copy uses copy_file_range, which also
	// clones extents on file systems that can.
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(permBits(mode)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copySymlink(src *os.Root, srcName string, dst *os.Root, dstName string) error {
	target, err := src.Readlink(srcName)
	if err != nil {
		return err
	}
	err = dst.Symlink(target, dstName)
	if errors.Is(err, fs.ErrExist) {
		if err := dst.Remove(dstName); err != nil {
			return err
		}
		err = dst.Symlink(target, dstName)
	}
	return err
}

// permBits keeps the bits of mode that chmod sets.
func permBits(mode fs.FileMode) fs.FileMode {
	return mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// CopyPath copies the host path src (a file, a symbolic link, which is
// followed, or a directory tree) to the host path dst, creating dst's
// parents, with the rules of copyTree: modes, symbolic links inside the
// tree and empty directories are kept. nixflow uses it to export a run's
// artifacts.
func CopyPath(ctx context.Context, src, dst string) error {
	srcRoot, err := os.OpenRoot(filepathDir(src))
	if err != nil {
		return err
	}
	defer srcRoot.Close()
	if err := os.MkdirAll(filepathDir(dst), 0o755); err != nil {
		return err
	}
	dstRoot, err := os.OpenRoot(filepathDir(dst))
	if err != nil {
		return err
	}
	defer dstRoot.Close()
	return copyTree(ctx, srcRoot, path.Base(src), true, dstRoot, path.Base(dst), nil)
}

func filepathDir(p string) string {
	d := path.Dir(path.Clean(p))
	if d == "" {
		return "."
	}
	return d
}
