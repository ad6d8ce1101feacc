package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
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
	if res, err := readResult(runDir); err == nil {
		return res.Started.Add(res.Duration), nil
	}
	fi, err := os.Stat(runDir)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// age is a --older-than value: a Go duration ("36h", "90m") where d
// (days) and w (weeks) are units too ("7d", "2w", "1w3d12h").
type age time.Duration

var agePart = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([dw])`)

func (a *age) Set(s string) error {
	var total time.Duration
	rest := s
	var std strings.Builder
	for rest != "" {
		if m := agePart.FindStringSubmatch(rest); m != nil {
			n, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				return err
			}
			unit := 24 * time.Hour
			if m[2] == "w" {
				unit *= 7
			}
			total += time.Duration(n * float64(unit))
			rest = rest[len(m[0]):]
			continue
		}
		// A standard part: up to the next day or week part.
		i := 1
		for i < len(rest) && agePart.FindString(rest[i:]) == "" {
			i++
		}
		std.WriteString(rest[:i])
		rest = rest[i:]
	}
	if std.Len() > 0 {
		d, err := time.ParseDuration(std.String())
		if err != nil {
			return fmt.Errorf("invalid duration %q (e.g. 36h, 7d, 2w)", s)
		}
		total += d
	}
	if total < 0 {
		return fmt.Errorf("invalid duration %q: negative", s)
	}
	*a = age(total)
	return nil
}

func (a *age) String() string { return time.Duration(*a).String() }
func (a *age) Type() string   { return "duration" }
