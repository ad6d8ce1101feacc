package main

import (
	"os"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// cmdImmutable makes the first file PATTERN matches immutable (chattr
// +i: not even root can remove it, nor empty the directory it is in)
// until the script ends, however it ends. For root, where the
// [immutable] condition holds.
func cmdImmutable(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: immutable PATTERN")
	}
	matches, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if len(matches) == 0 {
		ts.Fatalf("immutable: nothing matches %s", args[0])
	}
	ts.Check(setImmutable(matches[0], true))
	ts.Defer(func() {
		if err := setImmutable(matches[0], false); err != nil {
			ts.Logf("immutable: clear the flag of %s: %v", matches[0], err)
		}
	})
}

// setImmutable sets or clears the immutable flag of a file.
func setImmutable(path string, on bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags)
}

// immutableWorks tells whether a file in the temporary directory (where
// the scripts run) can be made immutable: as root, on a file system with
// the flag (ext4, xfs, btrfs).
func immutableWorks() bool {
	f, err := os.CreateTemp("", "nixflow-immutable-*")
	if err != nil {
		return false
	}
	f.Close()
	defer os.Remove(f.Name())
	if setImmutable(f.Name(), true) != nil {
		return false
	}
	return setImmutable(f.Name(), false) == nil
}

// fsImmutableFL is FS_IMMUTABLE_FL of linux/fs.h, which x/sys/unix does
// not name.
const fsImmutableFL = 0x10
