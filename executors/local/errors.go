package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/nixflow/nixflow/executors"
)

// outside marks os.Root's refusal to follow a symbolic link out of the
// workspace as executors.ErrOutside: a step made that link, it is the
// step's failure. (os does not export its error: its text is matched.)
func outside(err error) error {
	if err != nil && strings.Contains(err.Error(), "path escapes from parent") {
		return fmt.Errorf("a symbolic link on the way %w: %w", executors.ErrOutside, err)
	}
	return err
}

// checkRunDir says, once a step could not start, that its workspace or
// working directory is gone, instead of the "fork/exec /usr/bin/bash: no
// such file or directory" that the failed chdir gives. (Looked at only
// then: two stats for every step otherwise.)
func checkRunDir(workspace, dir string) error {
	if _, err := os.Stat(workspace); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the workspace directory %s no longer exists (deleted by a step, or by something else meanwhile)", workspace)
	}
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", executors.ErrNoWorkdir, dir)
	} else if err == nil && !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", executors.ErrNoWorkdir, dir)
	}
	return nil
}

// maxArgStrlen is the kernel's limit on one argument or environment
// string.
const maxArgStrlen = executors.MaxArgStrlen

// explainStart names what made the kernel refuse a step's command line
// and environment as too long (E2BIG): a variable longer than the limit
// for one string (a value exported through JOB_ENV, typically), or the
// whole.
func explainStart(err error, argv, env []string) error {
	if !errors.Is(err, syscall.E2BIG) {
		return err
	}
	if long := executors.LongVariable(env); long != nil {
		return fmt.Errorf("%w: %w", err, long)
	}
	for i, a := range argv {
		if len(a) >= maxArgStrlen {
			return fmt.Errorf("%w: argument %d is %d bytes long, more than the %d the kernel allows one argument", err, i, len(a), maxArgStrlen-1)
		}
	}
	total := 0
	for _, s := range append(append([]string(nil), argv...), env...) {
		total += len(s) + 1
	}
	return fmt.Errorf("%w: the command line and environment take %d bytes in all (pass large values in files)", err, total)
}
