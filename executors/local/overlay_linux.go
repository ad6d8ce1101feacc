//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixflow/nixflow/executors"
)

// layerDirs makes the upper and work directories of an overlay under
// layers, and returns its mount options. Paths an option cannot hold are
// errOverlayPaths.
func layerDirs(lower, layers, target string) (string, error) {
	for _, p := range []string{lower, layers, target} {
		if strings.ContainsAny(p, ",:\\") {
			return "", errOverlayPaths
		}
	}
	upper, work := filepath.Join(layers, "upper"), filepath.Join(layers, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	return "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work, nil
}

// mountOverlay mounts at target a kernel overlay of lower with a new
// upper layer under layers: root, or CAP_SYS_ADMIN, only.
//
// With metacopy=on where the kernel has it: a change of a file's owner
// or mode copies up its metadata, not its data. A container run as
// another user is given its workspace with chown -R (executors/oci),
// which would otherwise copy the whole repository into each job's upper
// layer. (A container sees the merged view only, where overlayfs keeps
// its attributes to itself; a local step, which could write the upper
// layer's, can read the run's snapshot, the only place a crafted
// attribute could lead to, anyway.)
func mountOverlay(lower, layers, target string) error {
	opts, err := layerDirs(lower, layers, target)
	if err != nil {
		return err
	}
	refused := false
	if metacopy.Load() >= 0 {
		err := unix.Mount("overlay", target, "overlay", unix.MS_NODEV, opts+",metacopy=on")
		if err == nil {
			metacopy.Store(1)
			return nil
		}
		refused = errors.Is(err, unix.EINVAL)
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	if refused {
		// The same mount without metacopy works: the kernel has none
		// (before 4.19). Not asked again.
		metacopy.CompareAndSwap(0, -1)
	}
	return nil
}

// metacopy says whether overlays are mounted with metacopy=on: 0 not
// known yet, 1 yes, -1 no (the kernel refused it).
var metacopy atomic.Int32

// fuseMountTimeout bounds fuse-overlayfs's start: it returns once the
// mount is in place.
const fuseMountTimeout = 30 * time.Second

// mountFUSEOverlay mounts the same overlay with fuse-overlayfs, which
// any user may where /dev/fuse is open to them (its daemon serves the
// mount and ends with it).
func mountFUSEOverlay(ctx context.Context, lower, layers, target string) error {
	bin, err := exec.LookPath("fuse-overlayfs")
	if err != nil {
		return err
	}
	opts, err := layerDirs(lower, layers, target)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, fuseMountTimeout)
	defer cancel()
	cmd := executors.OwnGroup(exec.CommandContext(ctx, bin, "-o", opts, target))
	// The daemon it leaves closes its standard streams; should it not,
	// do not wait for them.
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return fmt.Errorf("fuse-overlayfs: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// unmountOverlay unmounts the overlay at target (with fusermount for a
// FUSE one, as the user who mounted it may not unmount it otherwise) and
// removes its layers; or, when reuse is set and the overlay could be
// unmounted whole (nothing used it any more), calls reuse instead.
func unmountOverlay(target, layers string, fuse bool, reuse func()) error {
	if reuse != nil && !fuse {
		if err := unix.Unmount(target, 0); err == nil {
			reuse()
			return nil
		}
	}
	if err := unmount(target, fuse); err != nil {
		return fmt.Errorf("unmount workspace overlay: %w", err)
	}
	return removeTree(layers)
}

// unmount detaches the mount at target; one that is not there is no
// error.
func unmount(target string, fuse bool) error {
	var ferr error
	if fuse {
		for _, bin := range []string{"fusermount3", "fusermount"} {
			if path, err := exec.LookPath(bin); err == nil {
				out, err := executors.OwnGroup(exec.Command(path, "-u", "-z", "--", target)).CombinedOutput()
				if err == nil || !isMount(target) {
					return nil
				}
				ferr = fmt.Errorf("%s: %w: %s", bin, err, strings.TrimSpace(string(out)))
				break
			}
		}
	}
	err := unix.Unmount(target, unix.MNT_DETACH)
	switch {
	case err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT):
		return nil
	case ferr != nil:
		return ferr
	}
	return err
}

// isMount reports whether a mount point is at dir.
func isMount(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Lstat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// UnmountUnder unmounts every mount below dir (overlays of workspaces a
// killed run left), so that dir can be removed. Where mounts cannot be
// listed, it does nothing.
func UnmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	dir = filepath.Clean(dir)
	var errs []error
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			if err := unmount(mp, isFUSE(fields)); err != nil {
				errs = append(errs, fmt.Errorf("unmount %q: %w", mp, err))
			}
		}
	}
	return errors.Join(errs...)
}

// isFUSE reports whether the fields of a mountinfo line are of a FUSE
// mount: its type follows the "-" that ends the optional fields.
func isFUSE(fields []string) bool {
	for i, f := range fields[5:] {
		if f == "-" {
			return i+6 < len(fields) && strings.HasPrefix(fields[i+6], "fuse")
		}
	}
	return false
}

// unescapeMount decodes the octal escapes of a mountinfo path.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
