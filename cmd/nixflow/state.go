package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// stateDir is where nixflow keeps runs: $XDG_STATE_HOME/nixflow, by
// default ~/.local/state/nixflow.
func (a *app) stateDir() (string, error) {
	return a.xdgDir("XDG_STATE_HOME", ".local/state")
}

// cacheDir is where nixflow keeps what it can make again:
// $XDG_CACHE_HOME/nixflow, by default ~/.cache/nixflow.
func (a *app) cacheDir() (string, error) {
	return a.xdgDir("XDG_CACHE_HOME", ".cache")
}

// xdgDir is nixflow's directory under the XDG base directory named by
// variable, or under home/fallback when it is unset.
func (a *app) xdgDir(variable, fallback string) (string, error) {
	// The XDG spec: a relative path in these variables is invalid and
	// ignored.
	if d := a.getenv(variable); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "nixflow"), nil
	}
	home := a.getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", infraError(fmt.Errorf("find the home directory: %w", err), "set "+variable)
		}
	}
	return filepath.Join(home, filepath.FromSlash(fallback), "nixflow"), nil
}

func (a *app) runsDir() (string, error) {
	d, err := a.stateDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "runs"), nil
}

func (a *app) getenv(key string) string {
	for i := len(a.environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(a.environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// newRunID returns a new run id that sorts by start time, to the
// millisecond: 20261121-134700.123-9f2c1a.
func newRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102-150405.000") + "-" + hex.EncodeToString(b[:])
}

// runIDPattern is what newRunID and the compiled script make (and
// nixflow made before run ids had milliseconds): anything else in the
// runs directory (a backup someone made there) is no run, and sorted by
// name would pass for the newest.
var runIDPattern = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}(\.[0-9]{3})?-[0-9a-f]+$`)

// listRuns returns the run ids in the runs directory, oldest first.
func listRuns(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && runIDPattern.MatchString(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// findRun resolves a run id, a unique prefix of one, or "last".
func findRun(dir, ref string) (string, error) {
	if ref == "" {
		return "", usageError(errors.New("empty run id (an id, a unique prefix of one, or last)"))
	}
	ids, err := listRuns(dir)
	if err != nil {
		return "", infraError(err)
	}
	if len(ids) == 0 {
		return "", usageError(fmt.Errorf("no runs in %s", dir))
	}
	if ref == "last" || ref == "latest" {
		return lastRunHere(dir, ids)
	}
	var match []string
	for _, id := range ids {
		if id == ref {
			return id, nil
		}
		if strings.HasPrefix(id, ref) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return "", usageError(fmt.Errorf("no run %q", ref), "'nixflow runs' lists the runs")
	default:
		return "", usageError(fmt.Errorf("run %q is ambiguous: %s", ref, strings.Join(match, ", ")))
	}
}
