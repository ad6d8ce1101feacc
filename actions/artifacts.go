package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nixflow/nixflow/executors"
)

// artifactMeta records where an artifact came from, next to its data in
// the run directory: artifacts/<name>/meta.json and artifacts/<name>/data.
type artifactMeta struct {
	Name string `json:"name"`
	Job  string `json:"job"`
	// Path is the artifact's path in the producing job's workspace.
	Path string `json:"path"`
	Dir  bool   `json:"dir"`
}

func (e *engine) artifactDir(name string) string {
	return filepath.Join(e.opts.RunDir, "artifacts", name)
}

// saveOutputs copies every declared output out of the workspace, also when
// steps failed. A missing output is an error naming its path; the others
// are still saved.
func (jr *jobRun) saveOutputs() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(jr.e.abort), 30*time.Minute)
	defer cancel()
	if p, ok := jr.ws.(executors.Pinger); ok && len(jr.job.Outputs) > 0 {
		// Told to hurry, the copies go on, but not with a host that no
		// longer answers: they would hang until ssh gives up. (A ping
		// that ends after the copies did has nothing to stop.)
		var saved atomic.Bool
		defer saved.Store(true)
		defer context.AfterFunc(jr.e.abort, func() {
			if err := p.Ping(); err != nil && !saved.Load() {
				jr.e.log.Warn("outputs not saved", "job", jr.job.Name, "error", err)
				cancel()
			}
		})()
	}
	var errs []error
	for _, o := range jr.job.Outputs {
		dir := jr.e.artifactDir(o.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			errs = append(errs, err)
			continue
		}
		data := filepath.Join(dir, "data")
		if err := jr.ws.CopyOut(ctx, o.Path, data); err != nil {
			switch {
			case errors.Is(err, fs.ErrNotExist):
				err = &missingOutputError{name: o.Name, path: o.Path}
			case errors.Is(err, executors.ErrOutside):
				err = fmt.Errorf("output %q: %q is or goes through a symbolic link that %w", o.Name, o.Path, executors.ErrOutside)
			default:
				err = fmt.Errorf("output %q: save %q: %w", o.Name, o.Path, err)
			}
			// What a failed copy left (a read-only directory of the step's
			// included) goes whole: no part of an artifact is taken for it.
			if rerr := executors.RemoveTree(dir); rerr != nil {
				err = errors.Join(err, fmt.Errorf("output %q: remove what was copied: %w", o.Name, rerr))
			}
			errs = append(errs, err)
			continue
		}
		// A FIFO, a socket or a device is not copied (or is copied as
		// what it is, by some executors): no artifact.
		fi, err := os.Lstat(data)
		if err == nil && !fi.IsDir() && !fi.Mode().IsRegular() || errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("output %q: %q %w", o.Name, o.Path, errNotFileOrDir)
		}
		if err != nil {
			// What a failed copy left (a read-only directory of the step's
			// included) goes whole: no part of an artifact is taken for it.
			if rerr := executors.RemoveTree(dir); rerr != nil {
				err = errors.Join(err, fmt.Errorf("output %q: remove what was copied: %w", o.Name, rerr))
			}
			errs = append(errs, err)
			continue
		}
		meta := artifactMeta{Name: o.Name, Job: jr.job.Name, Path: o.Path, Dir: fi.IsDir()}
		if err := writeJSON(filepath.Join(dir, "meta.json"), meta); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrors(errs)
}

// restoreInputs copies the artifacts a job reads into its workspace: at
// their original path, or under the input's path (a directory's contents
// land in it; a file lands in it under its own name).
func (jr *jobRun) restoreInputs() error {
	for _, in := range jr.job.Inputs {
		dir := jr.e.artifactDir(in.Name)
		var meta artifactMeta
		raw, err := os.ReadFile(filepath.Join(dir, "meta.json"))
		if err == nil {
			err = json.Unmarshal(raw, &meta)
		}
		if err != nil {
			return fmt.Errorf("artifact %q: %w (did the job that outputs it fail before creating it?)", in.Name, errNotProduced)
		}
		dst := meta.Path
		if in.Path != "" {
			dst = in.Path
			if !meta.Dir {
				dst = path.Join(in.Path, path.Base(meta.Path))
			}
		}
		if err := jr.ws.CopyIn(jr.e.abort, filepath.Join(dir, "data"), dst); err != nil {
			if why := jr.inTheWay(err, dst, meta.Dir); why != "" {
				return fmt.Errorf("artifact %q to %q: %w", in.Name, dst, inTheWayError(why))
			}
			return fmt.Errorf("artifact %q to %q: %w", in.Name, dst, err)
		}
	}
	return nil
}

// inTheWayError is an input whose place in the workspace something the
// job started with (its checkout, an earlier input) takes: the
// workflow's doing, not the executor's.
type inTheWayError string

func (e inTheWayError) Error() string { return string(e) }

// inTheWay says what in the workspace stands where a failed copy of an
// input to dst (a directory when dir is set) had to go, "" when nothing
// does (the copy failed for another reason). A backend may have said so
// itself; otherwise a short command asks the workspace, so that the
// answer is what the backend sees. If that fails too, the failure stays
// the executor's.
func (jr *jobRun) inTheWay(err error, dst string, dir bool) string {
	var itw *executors.InTheWayError
	if errors.As(err, &itw) {
		return itw.Reason
	}
	if jr.e.abort.Err() != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(jr.e.abort, time.Minute)
	defer cancel()
	dst = path.Clean(dst)
	var out strings.Builder
	r, err := jr.ws.Run(ctx, executors.Command{
		Argv:   append(conditionShell[:len(conditionShell):len(conditionShell)], executors.InTheWayScript, "nixflow", dst, executors.InTheWayKind(dir)),
		Stdout: &out, Stderr: io.Discard,
	})
	if err != nil || r.ExitCode != 0 || r.Stopped {
		return ""
	}
	return executors.InTheWayReason(dst, dir, out.String())
}

// errNotFileOrDir is an output that is neither a file nor a directory.
var errNotFileOrDir = errors.New("is not a file or directory (FIFOs, sockets and devices are not saved)")

// joinedErrors is errors.Join on one line: a job's reason is one line.
type joinedErrors []error

func (j joinedErrors) Error() string {
	msgs := make([]string, len(j))
	for i, err := range j {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joinedErrors) Unwrap() []error { return j }

// joinErrors joins errs, nil for none, on one line.
func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return joinedErrors(errs)
}

// errNotProduced is an input whose artifact the producing job did not save.
var errNotProduced = errors.New("not produced")

// missingOutputError is a declared output that the job did not create.
type missingOutputError struct{ name, path string }

func (e *missingOutputError) Error() string {
	return fmt.Sprintf("output %q: path %q does not exist in the workspace", e.name, e.path)
}

func (e *missingOutputError) Is(target error) bool { return target == fs.ErrNotExist }
