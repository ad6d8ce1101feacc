package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixflow/nixflow/actions"
)

// lockFile is held, with flock, by the nixflow process running a run, for
// as long as it runs: gc tells a running run from a crashed one by it.
// The kernel releases the lock when the process dies, however it dies.
const lockFile = "lock"

// lockRun takes the lock of a run directory; the returned function
// releases it.
func lockRun(runDir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(runDir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// runActive reports whether a nixflow process holds the run's lock.
func runActive(runDir string) bool {
	f, err := os.Open(filepath.Join(runDir, lockFile))
	if err != nil {
		return false // no lock file: finished before locks, or never started
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if err == nil {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false
	}
	return errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EAGAIN)
}

// runEnd is when a run ended: its start plus its duration from the
// result; for a run without a result (it crashed), when its directory
// last changed.
func runEnd(runDir string) (time.Time, error) {
	if res, err := actions.ReadResult(runDir); err == nil {
		return res.Started.Add(res.Duration.Std()), nil
	}
	fi, err := os.Stat(runDir)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}
