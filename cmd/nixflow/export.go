package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors/local"
)

// exportedList is the file, in --artifacts-dir, that names the artifacts
// nixflow exported there: those an export replaces. Anything else in the
// directory is the user's, and stays as it is.
const exportedList = ".nixflow-artifacts"

// checkArtifactsDir makes sure, before a run starts, that --artifacts-dir
// can be written and that exporting the plan's artifacts will replace
// nothing but what an earlier export put there: finding out after an
// hour of building is too late. It creates the directory.
//
// It returns the outermost directory it made ("" if none), for the caller
// to remove should the run be refused after all.
func checkArtifactsDir(dir string, plan *compiler.Plan) (made string, err error) {
	if dir == "" {
		return "", nil
	}
	// The directories it makes go again when the check fails: a refused
	// run leaves nothing behind.
	made = firstMissing(dir)
	defer func() {
		if err != nil && made != "" {
			_ = os.RemoveAll(made)
			made = ""
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return made, fmt.Errorf("--artifacts-dir: %w", err)
	}
	if err := writable(dir); err != nil {
		return made, fmt.Errorf("--artifacts-dir %s: cannot write there: %w", dir, err)
	}
	exported, err := readExported(dir)
	if err != nil {
		return made, fmt.Errorf("--artifacts-dir: %w", err)
	}
	var errs []error
	for _, name := range plan.ArtifactNames() {
		if err := replaceable(dir, name, exported); err != nil {
			errs = append(errs, fmt.Errorf("--artifacts-dir: %w", err))
		}
	}
	return made, errors.Join(errs...)
}

// firstMissing is the outermost directory of path that does not exist
// (path itself, or one of its parents), "" if path exists.
func firstMissing(path string) string {
	missing := ""
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			return missing
		}
		missing = p
		if filepath.Dir(p) == p {
			return missing
		}
	}
}

func dirExists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}

// replaceable reports an error if dir/name exists and no export put it
// there.
func replaceable(dir, name string, exported map[string]bool) error {
	dst := filepath.Join(dir, name)
	if _, err := os.Lstat(dst); err == nil && !exported[name] {
		return fmt.Errorf("%s exists, and no run exported an artifact there: nixflow replaces only what it exported (move it, or choose another directory)", dst)
	}
	return nil
}

// readExported reads dir's list of exported artifacts.
func readExported(dir string) (map[string]bool, error) {
	f, err := os.Open(filepath.Join(dir, exportedList))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			names[line] = true
		}
	}
	return names, sc.Err()
}

// writeExported writes dir's list of exported artifacts.
func writeExported(dir string, names map[string]bool) error {
	var b strings.Builder
	b.WriteString("# Artifacts nixflow exported here: the next export replaces these, and nothing else.\n")
	for _, name := range slices.Sorted(maps.Keys(names)) {
		b.WriteString(name + "\n")
	}
	tmp := filepath.Join(dir, exportedList+".new")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, exportedList))
}

// exportArtifacts copies every artifact of a run to dir/<name>: a
// directory's contents land in it, a file lands in it under its own
// name. An artifact is copied beside its place first, and replaces what
// an earlier export left there only once whole; what no export put there
// is left as it is. An artifact that cannot be exported does not stop
// the others: the error names each that failed. It returns how many
// were exported.
func exportArtifacts(runDir, dir string) (int, error) {
	entries, err := os.ReadDir(filepath.Join(runDir, "artifacts"))
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("export artifacts: %w", err)
	}
	exported, err := readExported(dir)
	if err != nil {
		return 0, fmt.Errorf("export artifacts: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range entries {
		name := e.Name()
		src := filepath.Join(runDir, "artifacts", name, "data")
		// Produced: its data and its record are there (a copy that
		// failed leaves no record).
		if _, err := os.Lstat(filepath.Join(runDir, "artifacts", name, "meta.json")); err != nil {
			continue
		}
		if _, err := os.Lstat(src); err != nil {
			continue
		}
		if err := exportArtifact(runDir, src, dir, name, exported); err != nil {
			errs = append(errs, fmt.Errorf("export artifact %q: %w", name, err))
			continue
		}
		exported[name] = true
		n++
	}
	if n > 0 {
		if err := writeExported(dir, exported); err != nil {
			errs = append(errs, fmt.Errorf("export artifacts: %w", err))
		}
	}
	return n, errors.Join(errs...)
}

// exportArtifact copies the artifact name, whose data is src, to
// dir/name.
func exportArtifact(runDir, src, dir, name string, exported map[string]bool) error {
	if err := replaceable(dir, name, exported); err != nil {
		return err
	}
	staging, err := os.MkdirTemp(dir, ".nixflow-export-*")
	if err != nil {
		return err
	}
	defer removeTree(staging)
	tmp := filepath.Join(staging, name)
	dst := tmp
	if fi, err := os.Stat(src); err == nil && !fi.IsDir() {
		var meta struct{ Path string }
		raw, err := os.ReadFile(filepath.Join(runDir, "artifacts", name, "meta.json"))
		if err == nil {
			err = json.Unmarshal(raw, &meta)
		}
		if err != nil {
			return err
		}
		dst = filepath.Join(tmp, filepath.Base(meta.Path))
	}
	if err := local.CopyPath(context.Background(), src, dst); err != nil {
		return err
	}
	final := filepath.Join(dir, name)
	if err := removeTree(final); err != nil {
		return fmt.Errorf("replace the earlier export: %w", err)
	}
	return os.Rename(tmp, final)
}

// checkOutputFile makes sure, before a run starts, that a report can be
// written at path when it ends (--junit, --report, --trace, -o): that
// path is not a directory, and its directory (a symbolic link's target's)
// exists and can be written. A device or a pipe (/dev/stdout) is written
// in place: only that it is there is checked.
func checkOutputFile(flag, path string) error {
	if path == "" {
		return nil
	}
	if _, ok := openFD(path); ok {
		return nil
	}
	if strings.HasPrefix(path, "/dev/fd/") || strings.HasPrefix(path, "/proc/self/fd/") {
		return fmt.Errorf("%s %s: no such descriptor was given to nixflow (3>FILE gives it one)", flag, path)
	}
	fi, err := os.Stat(path)
	if err == nil && fi.IsDir() {
		return fmt.Errorf("%s %s: is a directory", flag, path)
	}
	if err == nil && !fi.Mode().IsRegular() {
		return nil
	}
	dir := filepath.Dir(outputTarget(path))
	if !dirExists(dir) {
		return fmt.Errorf("%s %s: no directory %s", flag, path, dir)
	}
	if writable(dir) != nil {
		return fmt.Errorf("%s %s: cannot write in %s", flag, path, dir)
	}
	return nil
}

// outputTarget is where writing path lands: path, or the file a symbolic
// link at path leads to (which need not exist yet).
func outputTarget(path string) string {
	for range 40 {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return path
		}
		t, err := os.Readlink(path)
		if err != nil {
			return path
		}
		if !filepath.IsAbs(t) {
			// Relative to the link's directory as it really is: a ..
			// after a linked directory goes up from its target.
			dir := filepath.Dir(path)
			if real, err := filepath.EvalSymlinks(dir); err == nil {
				dir = real
			}
			t = filepath.Join(dir, t)
		}
		path = t
	}
	return path
}

// openFD tells whether path names one of nixflow's open descriptors
// (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N), and which.
func openFD(path string) (uintptr, bool) {
	switch path {
	case "/dev/stdout":
		return 1, true
	case "/dev/stderr":
		return 2, true
	}
	for _, dir := range []string{"/dev/fd/", "/proc/self/fd/"} {
		if n, ok := strings.CutPrefix(path, dir); ok {
			// Only a descriptor nixflow was given (3>out.xml): its own,
			// the runtime's poller and files it opened, are all
			// close-on-exec.
			if fd, err := strconv.Atoi(n); err == nil && fd >= 0 && inherited(fd) {
				return uintptr(fd), true
			}
		}
	}
	return 0, false
}

// inherited tells whether fd is one nixflow was started with, not one it
// opened: one keepInheritedFDs found, or, where it did not look (Main
// called in a test), one open without close-on-exec.
func inherited(fd int) bool {
	open, cloexec := fdState(fd)
	if !open {
		return false
	}
	if givenFDs != nil {
		return givenFDs[fd]
	}
	return !cloexec
}

// writeFD writes data to a descriptor nixflow did not open, whole,
// without an os.File (whose finalizer would close it).
func writeFD(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := syscall.Write(fd, data)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			// A non-blocking descriptor (a terminal, a pipe someone set
			// so) that is full: wait for it a moment.
			time.Sleep(time.Millisecond)
			continue
		case err != nil:
			return err
		}
		data = data[n:]
	}
	return nil
}

// writeOutputFile writes data to path, whole or not at all: to a
// temporary file beside it, renamed over it. A device or a pipe
// (/dev/null) is written in place, never replaced; one of nixflow's own
// descriptors (/dev/stdout) is written through it; and a symbolic link's
// target is written, the link kept.
func writeOutputFile(path string, data []byte, perm fs.FileMode) error {
	if fd, ok := openFD(path); ok {
		// Through the descriptor nixflow has: its offset is the shell's
		// redirection's (> out.txt, >> log), where opening the path anew
		// would write from the file's start, and renaming over it would
		// take the file from under the redirection.
		return writeFD(int(fd), data)
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		return errors.Join(err, f.Close())
	}
	path = outputTarget(path)
	// The mode of the file it replaces, else perm as the umask lets it.
	mode := perm &^ 0o022
	if mask, known := local.Umask(); known {
		mode = perm &^ mask
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writable makes sure a file can be made in dir, by making one and
// removing it.
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".nixflow-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// osErr is err without the path and operation of an *fs.PathError or an
// *os.LinkError: where a file is written through a temporary one, the
// message names the file asked for, not the temporary one.
func osErr(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	if errors.As(err, &pe) {
		return pe.Err
	}
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
