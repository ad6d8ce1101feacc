package oci

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nixflow/nixflow/executors"
)

// teardownTimeout bounds the removal of a container when the caller's
// context is done.
const teardownTimeout = 30 * time.Second

// workspace is a job's workspace in a container.
type workspace struct {
	cli  *cli
	ctr  *container
	host executors.Workspace // the directories on this machine
	// cookie selects the shared mode's clean-up: a step's leftovers are
	// found by NIXFLOW_STEP_COOKIE, not by being in the container.
	cookie            bool
	dir, tempDir      string // as the steps see them
	hostDir, hostTemp string
	user              string
	log               hclog.Logger
	// uid and gid are nixflow's own, who reads what the steps made.
	uid, gid int

	// guard counts the operations in progress, which Teardown waits for.
	guard executors.Guard
}

var _ executors.Workspace = (*workspace)(nil)

func (w *workspace) Dir() string     { return w.dir }
func (w *workspace) TempDir() string { return w.tempDir }

// Where names the container.
func (w *workspace) Where() string {
	return w.cli.name + " container " + shortID(w.ctr.id)
}

// begin registers an operation; it fails once the workspace was torn down.
func (w *workspace) begin() error {
	return w.guard.Begin(strconv.Quote(w.hostDir))
}

// handOver gives the workspace directories (or paths in them) to the
// configured user, so that steps run as that user can write in them.
func (w *workspace) handOver(ctx context.Context, paths ...string) error {
	if w.user == "" {
		return nil
	}
	if len(paths) == 0 {
		paths = []string{w.dir, w.tempDir}
	}
	_, err := w.cli.output(ctx, nil, append([]string{"exec", "--user", "0", w.ctr.id, "bash", "-c",
		`set -e; u=$(id -u "$1" 2>/dev/null || printf %s "${1%%:*}"); g=$(id -g "$1" 2>/dev/null || printf %s "${1#*:}"); shift; for p; do if [ -e "$p" ] || [ -L "$p" ]; then chown -R -h "$u:$g" "$p"; fi; done`,
		"nixflow-chown", w.user}, paths...)...)
	if err != nil {
		return fmt.Errorf("give the workspace to user %q: %w; hint: the image needs chown (coreutils or busybox) for user", w.user, err)
	}
	return nil
}

// handBack gives paths to the steps' user again after giveBack took them
// (nothing to do where giveBack did nothing).
func (w *workspace) handBack(ctx context.Context, paths ...string) error {
	if w.uid == 0 || w.cli.rootless {
		return nil
	}
	return w.handOver(ctx, paths...)
}

// giveBack makes the files the steps made the invoking user's again,
// when nixflow does not run as root (root can read and remove them as
// they are).
func (w *workspace) giveBack(ctx context.Context, paths ...string) error {
	if w.uid == 0 || w.cli.rootless {
		return nil
	}
	owner := strconv.Itoa(w.uid) + ":" + strconv.Itoa(w.gid)
	// Paths that are not there are left to the copy to report; links
	// are changed, not what they lead to.
	_, err := w.cli.output(ctx, nil, append([]string{"exec", "--user", "0", w.ctr.id, "bash", "-c",
		`o=$1; shift; for p; do if [ -e "$p" ] || [ -L "$p" ]; then chown -R -h "$o" "$p"; fi; done`, "nixflow-chown", owner}, paths...)...)
	if err != nil {
		return fmt.Errorf("give the workspace's files back to uid %d: %w", w.uid, err)
	}
	return nil
}

// hostPath maps p, relative to Dir or absolute in Dir or TempDir, to the
// host workspace's terms (relative, or absolute on this machine).
func (w *workspace) hostPath(p string) (string, error) {
	if !path.IsAbs(p) {
		return p, nil
	}
	for _, m := range []struct{ ctr, host string }{{w.tempDir, w.hostTemp}, {w.dir, w.hostDir}} {
		if p == m.ctr {
			return m.host, nil
		}
		if rel, ok := strings.CutPrefix(p, m.ctr+"/"); ok && filepath.IsLocal(rel) {
			return filepath.Join(m.host, filepath.FromSlash(rel)), nil
		}
	}
	return "", fmt.Errorf("copy %q out of the container: source must be inside the workspace or the temporary directory", p)
}

// CopyIn copies through the workspace's mount.
func (w *workspace) CopyIn(ctx context.Context, src, dst string) error {
	if err := w.begin(); err != nil {
		return err
	}
	defer w.guard.Done()
	if err := w.host.CopyIn(ctx, src, dst); err != nil {
		return err
	}
	if w.user != "" {
		// The directories CopyIn made for dst too.
		top, _, _ := strings.Cut(filepath.ToSlash(filepath.Clean(dst)), "/")
		return w.handOver(ctx, path.Join(w.dir, top))
	}
	return nil
}

// CopyOut copies through the workspace's mount.
func (w *workspace) CopyOut(ctx context.Context, src, dst string) error {
	if err := w.begin(); err != nil {
		return err
	}
	defer w.guard.Done()
	hsrc, err := w.hostPath(src)
	if err != nil {
		return err
	}
	// Only what is copied is given back, and then to the steps' user
	// again: the job's later steps write there (after each step, its
	// control files are copied out of the temporary directory).
	csrc := src
	if !path.IsAbs(csrc) {
		csrc = path.Join(w.dir, csrc)
	}
	if err := w.giveBack(ctx, csrc); err != nil {
		return err
	}
	if err := w.host.CopyOut(ctx, hsrc, dst); err != nil {
		return err
	}
	return w.handBack(ctx, csrc)
}

// Teardown removes the container (isolated mode) and the workspace's
// directories, or keeps the workspace's files when keep is set.
func (w *workspace) Teardown(ctx context.Context, keep bool) error {
	if !w.guard.Close() {
		return nil
	}
	var errs []error
	if w.cookie {
		// Shared: the container stays; the job's processes go.
		w.guard.Wait(ctx)
		if err := w.giveBack(ctx, w.dir, w.tempDir); err != nil {
			errs = append(errs, err)
		}
	} else {
		// Giving the files back needs the container; removing it ends
		// a Run still returning.
		if err := w.giveBack(ctx, w.dir, w.tempDir); err != nil {
			errs = append(errs, err)
		}
		if err := w.cli.remove(ctx, w.ctr.id); err != nil {
			errs = append(errs, fmt.Errorf("remove container: %w", err))
		}
		w.guard.Wait(ctx)
	}
	if err := w.host.Teardown(ctx, keep); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
