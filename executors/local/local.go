// Package local is the executor that runs steps directly on the machine
// running nixflow, as the user running nixflow.
//
// # Workspaces
//
// A job's workspace is the directory <RunDir>/jobs/<job>, and its private
// temporary directory (JOB_ENV, JOB_PATH, JOB_OUTPUT) is <RunDir>/tmp/<job>
// (mode 0700). Prepare fails if the workspace directory already exists.
// An executor made by New hands the temporary directory on, emptied, to
// its next job in the same run directory when it is as made and nothing
// the job started is left (spare.go); the control files are then made
// with the directory, before the job's first step.
//
// With JobSpec.CopyRepo the workspace starts from JobSpec.RepoDir as git
// sees it, through a snapshot of it that the executor makes once per run,
// when its first job needs it, and that every job then starts from (an
// overlay mount where the kernel allows, else a copy; see snapshot.go): the tracked files and the untracked files that are not ignored,
// with their uncommitted modifications; deleted tracked files and ignored
// files are absent. The copy is itself a git repository (a clone of RepoDir
// sharing its objects through git's alternates, so it is cheap but relies
// on RepoDir's objects staying in place for the duration of the run) with
// the same HEAD, branch and index as RepoDir, so that git commands work in
// it and git status reports the same changes, staged and unstaged.
// Repository-local configuration is not copied, and the clone's "origin"
// remote is RepoDir. Submodules are not copied: their directories are
// created empty, as an uninitialised submodule's are. If RepoDir is a
// subdirectory of a work tree, only the files below it are copied and the
// copy is not a repository. If RepoDir is not in a git work tree (or git is
// not installed), the whole directory tree is copied; but if git refuses
// the repository (one of another user, say), Prepare fails. Copies keep
// file modes and symbolic links; sockets, FIFOs and device files are
// skipped, and so is RunDir should it lie inside RepoDir.
//
// # Steps
//
// A step runs with nixflow's own environment (the executor's base
// environment, from executors.Params.Environ) overlaid with the step's
// declared environment, the PathPrepend directories in front of PATH, plus
// one variable, NIXFLOW_STEP_COOKIE, a random value unique to the step
// (see below). The program (Argv[0], normally bash) is looked up in the
// PATH of the step's environment, or in nixflow's PATH if the step has
// none. Standard input
// is /dev/null, and the step runs in a process group of its own. Signals
// that nixflow ignores are ignored by the step too, as exec keeps them so:
// a step cannot trap SIGINT if nixflow was started with SIGINT ignored and
// did not handle it.
//
// A step's processes never outlive the step:
//
//   - When the step is stopped (its context is done), the signal escalation
//     (SIGINT or SIGTERM, then SIGTERM, then SIGKILL; SIGCONT after the
//     first two, for stopped processes) goes to the step's whole process
//     group, and continues for as long as the group has live members, even
//     after the step's main process has exited. Zombies count as dead:
//     nothing may reap orphans (as in a container whose init does not).
//   - When the step's main process exits on its own, whatever is left in
//     its process group (background jobs such as "sleep 1000 &") is killed
//     with SIGKILL.
//   - Processes that left the process group (setsid, daemons) are found by
//     the NIXFLOW_STEP_COOKIE variable in their environment, which they
//     inherit, and killed with SIGKILL: after every step that has no
//     cgroup of its own (below), after a stopped step otherwise.
//   - Where cgroup v2 lets nixflow make cgroups below its own (as root, or
//     in a delegated subtree with no controller enabled below nixflow's
//     cgroup), each step runs in a cgroup of its own, entered at clone
//     time; whatever is left in it (or in a cgroup the step made below
//     it) after the step is killed, so that a process that left the
//     process group and cleared or rewrote its environment (env -i;
//     daemons that rewrite theirs) does not survive either. A cgroup in
//     which nothing was left serves the executor's next step; Close
//     removes them. Without such a cgroup, that process is beyond reach,
//     as is one that runs as another user (sudo), one that moved itself
//     to a cgroup outside the step's (which takes write access to
//     the cgroup tree, as root has) when its step ended on its own, and
//     a step's processes if nixflow itself is killed with SIGKILL (which
//     also leaves the executor's empty cgroups behind).
//
// Run returns once the output pipes reached end of file, or at most two
// seconds after the step's processes were killed if some process beyond
// reach still holds them.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nixflow/nixflow/executors"
)

// Executor is the local executor. Each workspace is independent, and
// Prepare is safe for concurrent use.
type Executor struct {
	// Environ is the base environment of the steps.
	Environ []string
	// NoOverlay starts workspaces from the repository's snapshot by a
	// copy, never an overlay mount: for a caller that made their parent
	// directory visible elsewhere before (a shared container's bind
	// mount), where a mount made later would not show.
	NoOverlay bool
	// snaps are the repository snapshots jobs start from.
	snaps snapshots
	// cgroups is where the steps' cgroups are made.
	cgroups cgroupBase
	// stdin is the steps' standard input.
	stdin devNull
	// progs are the programs its steps' commands were found at.
	progs progCache
	// spares are directories of ended jobs kept for the next (spare.go).
	spares spareDirs
	// watch is the steps' guard (watchdog.go); nil: none.
	watch *guard
}

var _ executors.Executor = (*Executor)(nil)

// New returns a local executor whose steps inherit p.Environ. It matches
// executors.Factory; the compiler's local configuration has no options.
func New(p executors.Params) (executors.Executor, error) {
	e := &Executor{Environ: p.Environ, spares: spareDirs{on: true}}
	e.Watch(p.Logger)
	return e, nil
}

// Watch makes a watchdog stop the executor's steps if nixflow is killed
// (see watchdog.Enable), logging to log if it cannot. It must be called
// before the executor's first Prepare.
func (e *Executor) Watch(log hclog.Logger) {
	e.watch = newGuard(log)
}

// Close ends the executor's watchdog, and removes the repository
// snapshots the executor's jobs started from, the cgroups its steps ran
// in, and the temporary directories it kept for later jobs.
func (e *Executor) Close(ctx context.Context) error {
	e.watch.stop()
	e.cgroups.removeFree()
	e.stdin.close()
	return errors.Join(e.snaps.remove(), e.spares.remove())
}

// Prepare creates the job's workspace and temporary directory, and fills
// the workspace from spec.RepoDir when spec.CopyRepo is set. On failure it
// removes what it created.
func (e *Executor) Prepare(ctx context.Context, spec executors.JobSpec) (executors.Workspace, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("prepare local workspace: %w", err)
	}
	if spec.RunDir == "" {
		return nil, errors.New("prepare local workspace: empty run directory")
	}
	if !validJobName(spec.Job) {
		return nil, fmt.Errorf("prepare local workspace: invalid job name %q", spec.Job)
	}
	if spec.CopyRepo && spec.RepoDir == "" {
		return nil, errors.New("prepare local workspace: copying the repository needs a repository directory")
	}
	runDir, err := filepath.Abs(spec.RunDir)
	if err != nil {
		return nil, fmt.Errorf("prepare local workspace: %w", err)
	}
	w := &workspace{
		environ:      e.Environ,
		dir:          filepath.Join(runDir, "jobs", spec.Job),
		tempDir:      filepath.Join(runDir, "tmp", spec.Job),
		drainTimeout: defaultDrainTimeout,
		cgroups:      &e.cgroups,
		stdin:        &e.stdin,
		progs:        &e.progs,
		spares:       &e.spares,
		watch:        e.watch,
		runDir:       runDir,
	}
	if err := mkdirIn(w.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create workspace: %w", err)
	}
	// A temporary directory made now may serve later jobs (spare.go):
	// what it is like is recorded, and the control files made with it.
	if w.tempMade = e.spares.take(runDir, spec.ControlFiles, w.tempDir); w.tempMade == nil {
		if err := w.makeTempDir(umaskKeeps(0o700)); err != nil {
			_ = removeTree(w.dir)
			return nil, fmt.Errorf("create temporary directory: %w", err)
		}
		if e.spares.usable() {
			w.tempMade = recordDir(w.tempDir, spec.ControlFiles)
		}
	}
	if spec.CopyRepo {
		if err := e.copyRepo(ctx, spec, runDir, w); err != nil {
			_ = w.Teardown(context.WithoutCancel(ctx), false)
			return nil, fmt.Errorf("copy repository %q to workspace %q: %w", spec.RepoDir, w.dir, err)
		}
	}
	return w, nil
}

// copyRepo starts w from the run's snapshot of spec.RepoDir, making the
// snapshot first if this is the first job to need it.
func (e *Executor) copyRepo(ctx context.Context, spec executors.JobSpec, runDir string, w *workspace) error {
	snap, err := e.snaps.get(ctx, spec.RepoDir, runDir, spec.Exclude)
	if err != nil {
		return err
	}
	if e.NoOverlay {
		return snap.copyTo(ctx, w.dir)
	}
	return e.snaps.materialise(ctx, snap, w, runDir, spec.Job)
}

// validJobName reports whether job can name a directory: one non-empty
// path element.
func validJobName(job string) bool {
	return job != "" && job != "." && job != ".." && !strings.ContainsAny(job, "/\x00")
}

// workspace is a job's workspace on the local machine.
type workspace struct {
	environ      []string
	dir, tempDir string
	// overlay is the directory of the layers of the overlay mounted at
	// dir, if the workspace is one.
	overlay string
	// fuse tells that the overlay is a fuse-overlayfs one.
	fuse bool
	// reuseLayers, if set, gives the overlay's layers back to the
	// executor once it is unmounted whole, instead of removing them.
	reuseLayers func()
	// drainTimeout bounds the wait for the output pipes once the step's
	// processes are gone (tests shorten it).
	drainTimeout time.Duration
	// noCgroup keeps steps out of cgroups of their own (tests of the
	// cookie alone set it).
	noCgroup bool
	// cgroups is the executor's, nil outside one (host commands).
	cgroups *cgroupBase
	// stdin is the executor's /dev/null, nil outside one.
	stdin *devNull
	// progs is the executor's, nil outside one.
	progs *progCache
	// watch is the executor's guard, nil outside one or without.
	watch *guard
	// spares is the executor's, nil outside one: Teardown gives it the
	// temporary directory for runDir's next jobs, if it is as tempMade
	// records it (nil: not recorded) and nothing a step started may be
	// left (tainted unset).
	spares   *spareDirs
	runDir   string
	tempMade *madeDir
	tainted  atomic.Bool

	// guard counts the operations in progress, which Teardown waits for.
	guard executors.Guard
}

var (
	_ executors.Workspace      = (*workspace)(nil)
	_ executors.TempFileReader = (*workspace)(nil)
)

// makeTempDir creates the temporary directory, mode 0700; keeps says
// that the umask leaves that mode as it is.
func (w *workspace) makeTempDir(keeps bool) error {
	if err := mkdirIn(w.tempDir, 0o700); err != nil {
		return err
	}
	if keeps {
		return nil
	}
	// Mkdir's mode is subject to the umask, which may be unusual.
	return os.Chmod(w.tempDir, 0o700)
}

// mkdirIn creates the directory dir, and its parents with the same mode
// if they are missing (the first job's): one system call for the others.
func mkdirIn(dir string, perm os.FileMode) error {
	err := os.Mkdir(dir, perm)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), perm); err != nil {
		return err
	}
	return os.Mkdir(dir, perm)
}

// Dir returns the workspace directory, an absolute host path.
func (w *workspace) Dir() string { return w.dir }

// Where says the steps run on this machine.
func (w *workspace) Where() string { return "local" }

// TempDir returns the job's private temporary directory, an absolute host
// path outside Dir.
func (w *workspace) TempDir() string { return w.tempDir }

// begin registers an operation on the workspace; it fails once the
// workspace was torn down. The caller calls w.guard.Done when done.
func (w *workspace) begin() error {
	return w.guard.Begin(strconv.Quote(w.dir))
}

// CopyIn copies the host file or directory src to dst, relative to the
// workspace directory, creating dst's parents. A symbolic link given as
// src is followed; symbolic links inside a directory are copied as links.
// dst may not be absolute nor lead out of the workspace, also through
// symbolic links.
func (w *workspace) CopyIn(ctx context.Context, src, dst string) error {
	if err := w.begin(); err != nil {
		return err
	}
	defer w.guard.Done()
	if err := w.copyIn(ctx, src, dst); err != nil {
		return fmt.Errorf("copy %q into workspace as %q: %w", src, dst, err)
	}
	return nil
}

// checkMerge refuses, before anything is written, a copy of the
// directory src into dst, a directory of the workspace (dstRoot) already
// there, that would meet something in its way below dst
// (executors.CheckTree).
func checkMerge(src string, dstRoot *os.Root, dst string) error {
	if fi, err := dstRoot.Lstat(dst); err != nil || !fi.IsDir() {
		return nil // nothing to merge with; what stands at dst is the copy's to find
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return nil
	}
	entries, err := executors.TreeEntries(src)
	if err != nil {
		return err
	}
	return executors.CheckTree(dstRoot.Lstat, filepath.ToSlash(dst), entries)
}

func (w *workspace) copyIn(ctx context.Context, src, dst string) error {
	if !filepath.IsLocal(dst) {
		return errors.New("destination must be a relative path inside the workspace")
	}
	dst = filepath.Clean(dst)
	resolved, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	resolved, err = filepath.Abs(resolved)
	if err != nil {
		return err
	}
	srcDir, srcName := filepath.Dir(resolved), filepath.Base(resolved)
	if resolved == srcDir { // the file system's root
		srcName = "."
	}
	srcRoot, err := os.OpenRoot(srcDir)
	if err != nil {
		return err
	}
	defer srcRoot.Close()
	dstRoot, err := os.OpenRoot(w.dir)
	if err != nil {
		return err
	}
	defer dstRoot.Close()
	if err := checkMerge(resolved, dstRoot, dst); err != nil {
		return err
	}
	if parent := filepath.Dir(dst); parent != "." {
		if err := dstRoot.MkdirAll(parent, 0o755); err != nil {
			return err
		}
	}
	return mergeTree(ctx, srcRoot, srcName, dstRoot, dst)
}

// CopyOut copies src, relative to the workspace directory or an absolute
// path under the workspace or temporary directory, to the host path dst,
// creating dst's parents. A symbolic link given as src is followed if it
// stays inside the directory src is in; symbolic links inside a directory
// are copied as links. An existing file at dst is replaced; an existing
// directory receives src's contents.
func (w *workspace) CopyOut(ctx context.Context, src, dst string) error {
	if err := w.begin(); err != nil {
		return err
	}
	defer w.guard.Done()
	if err := w.copyOut(ctx, src, dst); err != nil {
		return fmt.Errorf("copy %q out of workspace to %q: %w", src, dst, outside(err))
	}
	return nil
}

// ReadTempFile implements executors.TempFileReader: it reads a control
// file in place, through the temporary directory's root so that a
// symbolic link a step made cannot lead it outside, and without
// blocking on a FIFO.
func (w *workspace) ReadTempFile(name string) ([]byte, error) {
	if err := w.begin(); err != nil {
		return nil, err
	}
	defer w.guard.Done()
	data, err := w.readTempFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %q in the temporary directory: %w", name, outside(err))
	}
	return data, nil
}

func (w *workspace) readTempFile(name string) ([]byte, error) {
	if !validJobName(name) {
		return nil, errors.New("not a file name")
	}
	// A name is one element: looked at and opened without following a
	// symbolic link, it cannot lead out of the directory. Only a link
	// needs the root, which follows those that stay inside (a step's own
	// business). Most steps write no control file: one lstat tells.
	p := filepath.Join(w.tempDir, name)
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		if st.Size == 0 {
			return []byte{}, nil
		}
	case syscall.S_IFDIR:
	case syscall.S_IFLNK:
		return w.readTempLink(name)
	default:
		return nil, fs.ErrNotExist // CopyOut skips it
	}
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err == syscall.ELOOP {
		return w.readTempLink(name)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return readControlFD(fd, name)
}

// readControlFD reads and closes fd, the control file name, opened
// without blocking, with plain system calls: an os.File would try and
// fail to register it with the poller first. A FIFO or a device reads as
// missing, as in readControlFile.
func readControlFD(fd int, name string) ([]byte, error) {
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG, syscall.S_IFDIR:
	default:
		return nil, fs.ErrNotExist // CopyOut skips it
	}
	buf := make([]byte, 0, max(st.Size, 0)+512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		case n == 0:
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// readTempLink reads the control file name, a symbolic link, through the
// temporary directory's root.
func (w *workspace) readTempLink(name string) ([]byte, error) {
	root, err := os.OpenRoot(w.tempDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return readControlFile(f)
}

// readControlFile reads and closes f, a control file opened without
// blocking: a FIFO or a device reads as missing, as CopyOut skips them.
func readControlFile(f *os.File) ([]byte, error) {
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil, fs.ErrNotExist // CopyOut skips it
	}
	return io.ReadAll(f)
}

func (w *workspace) copyOut(ctx context.Context, src, dst string) error {
	rootDir, name, err := w.resolve(src)
	if err != nil {
		return err
	}
	srcRoot, err := os.OpenRoot(rootDir)
	if err != nil {
		return err
	}
	defer srcRoot.Close()
	if _, err := srcRoot.Stat(name); err != nil {
		return err
	}
	dst, err = filepath.Abs(dst)
	if err != nil {
		return err
	}
	dstDir, dstName := filepath.Dir(dst), filepath.Base(dst)
	if dst == dstDir {
		return errors.New("destination is the file system's root")
	}
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return err
	}
	dstRoot, err := os.OpenRoot(dstDir)
	if err != nil {
		return err
	}
	defer dstRoot.Close()
	return copyTree(ctx, srcRoot, name, true, dstRoot, dstName, nil)
}

// resolve splits a CopyOut source into the directory it must stay in and a
// local name inside it.
func (w *workspace) resolve(src string) (root, name string, err error) {
	if !filepath.IsAbs(src) {
		if !filepath.IsLocal(src) {
			return "", "", errors.New("source must be inside the workspace")
		}
		return w.dir, filepath.Clean(src), nil
	}
	for _, root := range []string{w.tempDir, w.dir} {
		if rel, err := filepath.Rel(root, src); err == nil && filepath.IsLocal(rel) {
			return root, rel, nil
		}
	}
	return "", "", errors.New("source must be inside the workspace or the temporary directory")
}

// Teardown removes the workspace, unless keep is set, and the temporary
// directory, or keeps that one for the executor's next job (spare.go).
// It waits first for a Run that is still returning, as long as ctx
// allows. Calling it again is harmless.
func (w *workspace) Teardown(ctx context.Context, keep bool) error {
	w.guard.Close()
	// Run kills whatever it started within a bounded time; when ctx ends
	// first, go ahead and let removal report what it cannot remove.
	ended := w.guard.Wait(ctx)
	var errs []error
	if w.overlay != "" {
		if err := w.unmount(ctx, keep); err != nil {
			errs = append(errs, err)
		}
	}
	// Only a directory nothing of the job may still use serves again.
	tempMade := w.tempMade
	if !ended || w.tainted.Load() {
		tempMade = nil
	}
	w.tempMade = nil
	// The temp dir goes even when the workspace is kept: it holds the
	// control files (JOB_ENV may carry secrets) and nothing of the user's.
	if err := w.spares.give(w.runDir, w.tempDir, tempMade); err != nil {
		errs = append(errs, fmt.Errorf("remove %q: %w", w.tempDir, err))
	}
	if !keep {
		if err := removeDir(w.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %q: %w", w.dir, err))
		}
	}
	return errors.Join(errs...)
}

// unmount ends the workspace's overlay mount. A kept workspace is first
// copied out of it, so that it outlives the mount as a plain directory.
func (w *workspace) unmount(ctx context.Context, keep bool) error {
	kept := ""
	if keep {
		kept = w.dir + ".kept"
		if err := os.Mkdir(kept, 0o755); err != nil {
			return fmt.Errorf("keep workspace: %w", err)
		}
		if err := copyDir(ctx, w.dir, kept); err != nil {
			_ = removeTree(kept)
			return fmt.Errorf("keep workspace: %w", err)
		}
	}
	if err := unmountOverlay(w.dir, w.overlay, w.fuse, w.reuseLayers); err != nil {
		return err
	}
	w.overlay = ""
	if kept == "" {
		return nil
	}
	if err := os.Remove(w.dir); err != nil {
		return fmt.Errorf("keep workspace: %w", err)
	}
	return os.Rename(kept, w.dir)
}

// copyDir copies the tree of directory src into the existing directory
// dst.
func copyDir(ctx context.Context, src, dst string) error {
	s, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer d.Close()
	return copyTree(ctx, s, ".", false, d, ".", nil)
}

// removeTree removes dir and everything below it, also when a step left
// directories without write or search permission.
func removeTree(dir string) error { return executors.RemoveTree(dir) }
