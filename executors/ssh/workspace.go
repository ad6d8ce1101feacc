package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"strings"

	"github.com/nixflow/nixflow/executors"
)

// workspace is a job's workspace on a host: <run>/jobs/<job>, and its
// private temporary directory <run>/tmp/<job>.
type workspace struct {
	h            *host
	c            *conn
	job          string
	dir, tempDir string
	log          func(string, ...any)

	// guard counts the operations in progress, which Teardown waits for.
	guard executors.Guard
}

var _ executors.Workspace = (*workspace)(nil)

// prepare connects if needed and makes the job's workspace.
func (h *host) prepare(ctx context.Context, spec executors.JobSpec) (*workspace, error) {
	c, err := h.connect(ctx, spec.Logf)
	if err != nil {
		return nil, err
	}
	w := &workspace{
		h: h, c: c, job: spec.Job, log: spec.Logf,
		dir:     path.Join(c.run, "jobs", spec.Job),
		tempDir: path.Join(c.run, "tmp", spec.Job),
	}
	mk := `set -e; mkdir -m 755 -- "$1"; mkdir -m 700 -- "$2"`
	if err := c.script(ctx, mk, []string{w.dir, w.tempDir}, nil, nil); err != nil {
		return nil, h.prepareError("create workspace", ctx, err)
	}
	if err := w.fill(ctx, spec); err != nil {
		_ = w.remove(context.WithoutCancel(ctx), false)
		return nil, err
	}
	return w, nil
}

// fill copies the repository and the Nix closure the job needs.
func (w *workspace) fill(ctx context.Context, spec executors.JobSpec) error {
	if spec.CopyRepo {
		spec.Logf("copying the repository to %s", w.h.t.Where())
		if err := w.copyRepo(ctx, spec); err != nil {
			return w.h.prepareError(fmt.Sprintf("copy repository %q to workspace", spec.RepoDir), ctx, err)
		}
	}
	if err := w.nixCopy(ctx, spec); err != nil {
		return w.h.prepareError("copy Nix store paths", ctx, err)
	}
	return nil
}

// prepareError wraps err, keeping a cancellation recognisable, with the
// hint of a full disk when the host says so and no hint is there yet.
func (h *host) prepareError(what string, ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%s on %s: %w", what, h.t.Where(), ctx.Err())
	}
	if msg := err.Error(); diskFull(msg) && !strings.Contains(msg, "\nhint: ") {
		return fmt.Errorf("%s on %s: %w\nhint: the host's disk is full (or the user's quota spent)", what, h.t.Where(), err)
	}
	return fmt.Errorf("%s on %s: %w", what, h.t.Where(), err)
}

// Dir is the workspace directory on the host.
func (w *workspace) Dir() string { return w.dir }

// Where names the host: user@host, or host.
func (w *workspace) Where() string { return w.h.t.Where() }

// TempDir is the job's private directory on the host (mode 0700).
func (w *workspace) TempDir() string { return w.tempDir }

// begin registers an operation; it fails once the workspace was torn down.
func (w *workspace) begin() error {
	return w.guard.Begin(w.Where() + ":" + w.dir)
}

// Teardown removes the workspace and the temporary directory (only the
// latter with keep) and kills what is left of the job's steps. It waits
// for a Run that is still returning first, as long as ctx allows.
func (w *workspace) Teardown(ctx context.Context, keep bool) error {
	if !w.guard.Close() {
		return nil
	}
	w.guard.Wait(ctx)
	err := w.remove(ctx, keep)
	if keep && err == nil {
		w.log("kept workspace %s:%s", w.Where(), w.dir)
	}
	w.h.e.release(w.h)
	return err
}

// removeScript kills what is left of a job's steps ($3@*.pgid) and
// removes its temporary directory $2 and, unless $4 names the mark that
// keeps it, its workspace $1.
const removeScript = `ws=$1 tmp=$2 state=$3 kept=$4
for f in "$state"@*.pgid; do
	g= && IFS= read -r g 2>/dev/null <"$f"
	case $g in '' | x*) ;; *) kill -s KILL -- "-$g" 2>/dev/null ;; esac
done
rmtree() {
	rm -rf -- "$1" 2>/dev/null || { chmod -R u+rwx -- "$1" 2>/dev/null; rm -rf -- "$1"; }
}
rmtree "$tmp"
if [ -n "$kept" ]; then : >"$kept"; else rmtree "$ws"; fi`

// remove kills what is left of the job's steps and removes its
// directories on the host; with keep, the workspace stays and the anchor
// is told to leave it at the end of the run.
func (w *workspace) remove(ctx context.Context, keep bool) error {
	kept := ""
	if keep {
		kept = path.Join(w.c.run, "ctl", "kept."+w.job)
	}
	if err := w.c.script(ctx, removeScript, []string{w.dir, w.tempDir, w.statePrefix(), kept}, nil, nil); err != nil {
		return fmt.Errorf("remove workspace %s:%s: %w", w.Where(), w.dir, err)
	}
	return nil
}

// Ping fails when the host does not answer (see executors.Pinger), and
// then gives up the connection; one whose every channel stays taken is
// busy, not gone.
func (w *workspace) Ping() error {
	err := w.c.ping()
	switch {
	case err == nil, errors.Is(err, errBusy):
		// Busy with the copies, not gone.
		return nil
	case !isLost(w.c):
		w.c.abandon()
	}
	return fmt.Errorf("%s does not answer: %w", w.Where(), err)
}

// statePrefix is where the job's steps keep their state files (process
// group ids), followed by @<cookie>: no job's name holds an @, so the
// files of job "a" are not those of job "a.b".
func (w *workspace) statePrefix() string {
	return path.Join(w.c.run, "ctl", "job."+w.job)
}

// Run runs cmd on the host (see the package documentation).
func (w *workspace) Run(ctx context.Context, cmd executors.Command) (executors.Result, error) {
	if err := w.begin(); err != nil {
		return executors.Result{}, err
	}
	defer w.guard.Done()
	dir, err := executors.StepDir(w.dir, cmd)
	if err != nil {
		return executors.Result{}, err
	}
	if err := executors.LongVariable(cmd.Env); err != nil {
		return executors.Result{}, fmt.Errorf("run: %w", err)
	}
	for _, kv := range cmd.Env {
		name, _, _ := strings.Cut(kv, "=")
		if !executors.ValidName(name) {
			return executors.Result{}, fmt.Errorf("run: variable name %q cannot be passed to a remote step (letters, digits and _ only)", name)
		}
	}
	// The channel is released by run once the step's session is over.
	if w.c.acquire(ctx) != nil {
		return executors.Result{ExitCode: -1, Stopped: true}, nil
	}
	if isLost(w.c) {
		w.c.release()
		return executors.Result{ExitCode: -1}, w.c.lostError()
	}
	return w.run(ctx, cmd, dir)
}

// localPath reports whether p is a relative slash-separated path that
// stays inside the directory it is relative to.
func localPath(p string) bool {
	if p == "" || path.IsAbs(p) || strings.Contains(p, "\x00") {
		return false
	}
	c := path.Clean(p)
	return c != ".." && !strings.HasPrefix(c, "../")
}

// header encodes a step for step.sh: a count line, then NUL-terminated
// fields.
func header(ctl, dir, cookie string, env, prepend, argv []string) []byte {
	fields := []string{ctl, dir, cookie, fmt.Sprint(len(env))}
	fields = append(fields, env...)
	fields = append(fields, fmt.Sprint(len(prepend)))
	fields = append(fields, prepend...)
	fields = append(fields, argv...)
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n", len(fields))
	for _, f := range fields {
		b.WriteString(f)
		b.WriteByte(0)
	}
	return b.Bytes()
}

// exitStatus is the exit status of a finished ssh client.
func exitStatus(err error) (int, bool) {
	if err == nil {
		return 0, true
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), true
	}
	return 0, false
}
