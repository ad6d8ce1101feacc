package custom

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/nixflow/nixflow/executors"
)

// workspace is a job's workspace, wherever the hooks put it. host is the
// job's private directory on this machine, in which its hooks run.
type workspace struct {
	e            *Executor
	job          string
	host         executors.Workspace
	dir, tempDir string
	steps        atomic.Int64

	// guard counts the operations in progress, which Teardown waits for.
	guard executors.Guard
}

var _ executors.Workspace = (*workspace)(nil)

func (w *workspace) Dir() string     { return w.dir }
func (w *workspace) TempDir() string { return w.tempDir }
func (w *workspace) Where() string   { return "custom executor " + w.e.name }

// begin registers an operation; it fails once the workspace was torn down.
func (w *workspace) begin() error {
	return w.guard.Begin(strconv.Quote(w.dir))
}

// env is what the hooks of the job get.
func (w *workspace) env(hook string) []string {
	return append(w.e.baseEnv(hook),
		"NIXFLOW_JOB="+w.job,
		"JOB_NAME="+w.job,
		"NIXFLOW_WORKSPACE="+w.dir,
		"NIXFLOW_TEMP_DIR="+w.tempDir,
		"NIXFLOW_HOST_DIR="+w.host.Dir(),
	)
}

// hook runs a hook of the job other than executeJob.
func (w *workspace) hook(ctx context.Context, name, script string, args []string, logf func(string)) error {
	return w.e.runHook(ctx, w.host, name, script, w.env(name), args, logf)
}

// Run runs the step through the executeJob hook.
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
	if ctx.Err() != nil {
		return executors.Result{ExitCode: -1, Stopped: true}, nil
	}
	script, err := executors.EnvScript(cmd.Env, cmd.PathPrepend)
	if err != nil {
		return executors.Result{}, fmt.Errorf("run: %w", err)
	}
	envFile := filepath.Join(w.host.TempDir(), fmt.Sprintf("step-%d.env", w.steps.Add(1)))
	if err := os.WriteFile(envFile, []byte(script), 0o600); err != nil {
		return executors.Result{}, fmt.Errorf("run: write the step's environment: %w", err)
	}
	defer os.Remove(envFile)
	env := append(w.env("executeJob"),
		"NIXFLOW_STEP_DIR="+dir,
		"NIXFLOW_STEP_ENV_FILE="+envFile,
		"NIXFLOW_STEP_PATH_PREPEND="+strings.Join(cmd.PathPrepend, ":"),
	)
	argv := append([]string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", w.e.cfg.Hooks.ExecuteJob, "nixflow-executeJob"}, cmd.Argv...)
	res, err := w.host.Run(ctx, executors.Command{Argv: argv, Env: env, Stdout: cmd.Stdout, Stderr: cmd.Stderr, Stop: cmd.Stop})
	if err != nil {
		return res, fmt.Errorf("custom executor %q: hook executeJob: %w", w.e.name, err)
	}
	if res.ExitCode == SystemFailureExitCode && !res.Stopped {
		return res, &HookError{Executor: w.e.name, Hook: "executeJob", ExitCode: res.ExitCode}
	}
	return res, nil
}

// CopyIn copies the host path src into the workspace with restoreArtifact.
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

func (w *workspace) copyIn(ctx context.Context, src, dst string) error {
	if !filepath.IsLocal(dst) {
		return errors.New("destination must be a relative path inside the workspace")
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return err
	}
	return w.hook(ctx, "restoreArtifact", w.e.cfg.Hooks.RestoreArtifact, []string{abs, path.Join(w.dir, filepath.ToSlash(filepath.Clean(dst)))}, nil)
}

// CopyOut copies src, in the workspace or the control directory, to the
// host path dst with saveArtifact.
func (w *workspace) CopyOut(ctx context.Context, src, dst string) error {
	if err := w.begin(); err != nil {
		return err
	}
	defer w.guard.Done()
	if err := w.copyOut(ctx, src, dst); err != nil {
		return fmt.Errorf("copy %q out of workspace to %q: %w", src, dst, err)
	}
	return nil
}

func (w *workspace) copyOut(ctx context.Context, src, dst string) error {
	from, err := w.resolve(src)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dst)
	if err != nil {
		return err
	}
	if abs == filepath.Dir(abs) {
		return errors.New("destination is the file system's root")
	}
	return w.hook(ctx, "saveArtifact", w.e.cfg.Hooks.SaveArtifact, []string{from, abs}, nil)
}

// resolve turns a CopyOut source into a path as the steps see it, inside
// the workspace or the control directory.
func (w *workspace) resolve(src string) (string, error) {
	if !path.IsAbs(src) {
		if !filepath.IsLocal(src) {
			return "", errors.New("source must be inside the workspace")
		}
		return path.Join(w.dir, filepath.ToSlash(filepath.Clean(src))), nil
	}
	src = path.Clean(src)
	for _, root := range []string{w.tempDir, w.dir} {
		if src == root || strings.HasPrefix(src, root+"/") {
			return src, nil
		}
	}
	return "", errors.New("source must be inside the workspace or the temporary directory")
}

// Teardown waits for a Run still returning (as long as ctx allows), runs
// cleanupJob, then removes the job's directory on this machine.
func (w *workspace) Teardown(ctx context.Context, keep bool) error {
	if !w.guard.Close() {
		return nil
	}
	w.guard.Wait(ctx)
	env := w.env("cleanupJob")
	if keep {
		env = append(env, "NIXFLOW_KEEP=1")
	} else {
		env = append(env, "NIXFLOW_KEEP=0")
	}
	err := w.e.runHook(ctx, w.host, "cleanupJob", w.e.cfg.Hooks.CleanupJob, env, nil, nil)
	if herr := w.host.Teardown(ctx, false); herr != nil {
		err = errors.Join(err, herr)
	}
	return err
}
