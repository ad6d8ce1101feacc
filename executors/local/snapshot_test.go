//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/internal/testenv"
)

// overlayWorksHere tries an overlay mount of kind in a temporary
// directory. A FUSE one is required where NIXFLOW_TEST_REQUIRE names
// fuse-overlayfs.
func overlayWorksHere(t *testing.T, kind overlayKind) bool {
	t.Helper()
	dir := t.TempDir()
	lower, target := filepath.Join(dir, "lower"), filepath.Join(dir, "target")
	for _, d := range []string{lower, target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount := func() error { return mountOverlay(lower, filepath.Join(dir, "layers"), target) }
	if kind == overlayFUSE {
		mount = func() error {
			return mountFUSEOverlay(context.Background(), lower, filepath.Join(dir, "layers"), target)
		}
	}
	if err := mount(); err != nil {
		if kind == overlayFUSE && testenv.Required("fuse-overlayfs") {
			t.Fatalf("fuse-overlayfs is required and does not work here: %v", err)
		}
		t.Logf("overlay mount (%v) does not work here: %v", kind, err)
		return false
	}
	if err := unmountOverlay(target, filepath.Join(dir, "layers"), kind == overlayFUSE, nil); err != nil {
		t.Fatal(err)
	}
	return true
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skip("no /proc/self/mountinfo")
	}
	var mps []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			if mp := unescapeMount(f[4]); mp == dir || strings.HasPrefix(mp, dir+"/") {
				mps = append(mps, mp)
			}
		}
	}
	return mps
}

func snapshotRepo(t *testing.T) string {
	t.Helper()
	requireGit(t)
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	writeFiles(t, repo, map[string]string{"tracked.txt": "v1\n", ".gitignore": "*.log\n", "dir/deep.txt": "deep\n"})
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "initial")
	writeFiles(t, repo, map[string]string{"tracked.txt": "v2\n", "untracked.txt": "new\n", "ignored.log": "x\n"})
	return repo
}

// TestSnapshotModes checks both ways a workspace starts from the run's
// snapshot: jobs see the repository as git sees it, with git state; what
// one job writes reaches neither the source, nor the snapshot, nor
// another job; nothing stays mounted or on disk after teardown and Close.
func TestSnapshotModes(t *testing.T) {
	for _, mode := range []overlayKind{overlayNone, overlayKernel, overlayFUSE} {
		name := map[overlayKind]string{overlayNone: "copy", overlayKernel: "overlay", overlayFUSE: "fuse-overlayfs"}[mode]
		t.Run(name, func(t *testing.T) {
			if mode != overlayNone && !overlayWorksHere(t, mode) {
				t.Skip("not here")
			}
			repo := snapshotRepo(t)
			runDir := t.TempDir()
			e := &Executor{Environ: os.Environ()}
			e.snaps.overlay = mode
			prep := func(job string) *workspace {
				ws, err := e.Prepare(context.Background(), executors.JobSpec{RunDir: runDir, Job: job, CopyRepo: true, RepoDir: repo})
				if err != nil {
					t.Fatalf("Prepare(%s): %v", job, err)
				}
				return ws.(*workspace)
			}
			a := prep("a")
			if got, want := len(mountsUnder(t, a.dir)) > 0, mode != overlayNone; got != want || a.fuse != (mode == overlayFUSE) {
				t.Errorf("workspace is a mount: %v, want %v (FUSE: %v)", got, want, a.fuse)
			}
			res, _, stderr := run(t, a, context.Background(), `echo changed > tracked.txt; echo mine > mine.txt; rm dir/deep.txt; git add -A`)
			if res.ExitCode != 0 {
				t.Fatalf("step in a: %+v %s", res, stderr)
			}
			b := prep("b")
			assertFiles(t, b.dir, map[string]string{"tracked.txt": "v2\n", "untracked.txt": "new\n", "dir/deep.txt": "deep\n"},
				[]string{"mine.txt", "ignored.log"})
			assertSameGit(t, repo, b.dir)
			assertFiles(t, repo, map[string]string{"tracked.txt": "v2\n", "dir/deep.txt": "deep\n"}, []string{"mine.txt"})

			for _, w := range []*workspace{a, b} {
				if err := w.Teardown(context.Background(), false); err != nil {
					t.Errorf("Teardown: %v", err)
				}
			}
			if mps := mountsUnder(t, runDir); len(mps) > 0 {
				t.Errorf("mounts left after teardown: %q", mps)
			}
			// A job after them starts clean, a kernel overlay from the
			// layers of one that ended.
			c := prep("c")
			assertFiles(t, c.dir, map[string]string{"tracked.txt": "v2\n", "untracked.txt": "new\n", "dir/deep.txt": "deep\n"},
				[]string{"mine.txt", "ignored.log"})
			assertSameGit(t, repo, c.dir)
			if reused := c.overlay == filepath.Join(runDir, "overlays/a") || c.overlay == filepath.Join(runDir, "overlays/b"); reused != (mode == overlayKernel) {
				t.Errorf("job c's layers: %q", c.overlay)
			}
			if err := c.Teardown(context.Background(), false); err != nil {
				t.Errorf("Teardown: %v", err)
			}
			if err := e.Close(context.Background()); err != nil {
				t.Errorf("Close: %v", err)
			}
			for _, d := range []string{"jobs/a", "jobs/b", "jobs/c", "snapshots/0", "overlays/a", "overlays/b", "overlays/c"} {
				if _, err := os.Lstat(filepath.Join(runDir, d)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s left after Close (%v)", d, err)
				}
			}
			waitNoFUSEDaemon(t, runDir)
		})
	}
}

// TestSnapshotKeepOverlay checks that a kept overlay workspace becomes a
// plain directory with the job's files, not a mount left behind.
func TestSnapshotKeepOverlay(t *testing.T) {
	if !overlayWorksHere(t, overlayKernel) {
		t.Skip("overlay mounts do not work here")
	}
	repo := snapshotRepo(t)
	runDir := t.TempDir()
	e := &Executor{Environ: os.Environ()}
	ws, err := e.Prepare(context.Background(), executors.JobSpec{RunDir: runDir, Job: "kept", CopyRepo: true, RepoDir: repo})
	if err != nil {
		t.Fatal(err)
	}
	w := ws.(*workspace)
	run(t, w, context.Background(), `echo mine > mine.txt`)
	if err := w.Teardown(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if mps := mountsUnder(t, runDir); len(mps) > 0 {
		t.Errorf("mounts left: %q", mps)
	}
	assertFiles(t, w.dir, map[string]string{"mine.txt": "mine\n", "tracked.txt": "v2\n"}, nil)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestUnmountUnder checks that the workspaces of a killed run can be
// unmounted and removed.
func TestUnmountUnder(t *testing.T) {
	kernel, fuse := overlayWorksHere(t, overlayKernel), overlayWorksHere(t, overlayFUSE)
	if !kernel && !fuse {
		t.Skip("overlay mounts do not work here")
	}
	runDir := t.TempDir()
	want := 0
	for i := range 4 {
		lower, target := filepath.Join(runDir, "lower"), filepath.Join(runDir, fmt.Sprint("jobs/", i))
		for _, d := range []string{lower, target} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		layers := filepath.Join(runDir, fmt.Sprint("overlays/", i))
		switch {
		case i%2 == 0 && kernel:
			if err := mountOverlay(lower, layers, target); err != nil {
				t.Fatal(err)
			}
		case i%2 == 1 && fuse:
			if err := mountFUSEOverlay(context.Background(), lower, layers, target); err != nil {
				t.Fatal(err)
			}
		default:
			continue
		}
		want++
	}
	if got := len(mountsUnder(t, runDir)); got != want {
		t.Fatalf("%d mounts, want %d", got, want)
	}
	if err := UnmountUnder(runDir); err != nil {
		t.Fatal(err)
	}
	if mps := mountsUnder(t, runDir); len(mps) > 0 {
		t.Errorf("mounts left: %q", mps)
	}
	if err := os.RemoveAll(runDir); err != nil {
		t.Fatal(err)
	}
	waitNoFUSEDaemon(t, runDir)
}

// waitNoFUSEDaemon waits, a few seconds at most, for the fuse-overlayfs
// daemons of mounts under dir to end once they are unmounted.
func waitNoFUSEDaemon(t *testing.T, dir string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		out, _ := exec.Command("pgrep", "-af", "fuse-overlayfs").Output()
		if !strings.Contains(string(out), dir) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("fuse-overlayfs daemons left:\n%s", out)
			return
		}
	}
}

// benchRepo makes a committed repository of n small files in nested
// directories, once per size for the test binary.
func benchRepo(b *testing.B, n int) string {
	b.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("git not on PATH")
	}
	repo := b.TempDir()
	for i := range n {
		p := filepath.Join(repo, fmt.Sprintf("d%02d/s%02d/f%05d.txt", i%50, (i/50)%20, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-q", "-m", "x"}} {
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return repo
}

// BenchmarkPrepareCopyRepo measures a job's workspace preparation with
// copyRepo once the run's snapshot exists (its one-time cost is left out,
// as it is shared by every job of a run): by overlay mount (the
// kernel's, fuse-overlayfs) and by copy.
func BenchmarkPrepareCopyRepo(b *testing.B) {
	for _, files := range []int{200, 20000} {
		repo := benchRepo(b, files)
		for _, mode := range []string{"overlay", "fuse", "copy"} {
			b.Run(fmt.Sprintf("files=%d/mode=%s", files, mode), func(b *testing.B) {
				runDir := b.TempDir()
				e := &Executor{}
				e.snaps.overlay = map[string]overlayKind{"overlay": overlayKernel, "fuse": overlayFUSE, "copy": overlayNone}[mode]
				spec := executors.JobSpec{RunDir: runDir, CopyRepo: true, RepoDir: repo}
				prep := func(job string) *workspace {
					spec.Job = job
					ws, err := e.Prepare(context.Background(), spec)
					if err != nil {
						b.Fatal(err)
					}
					return ws.(*workspace)
				}
				w := prep("warm")
				if mode != "copy" && (w.overlay == "" || w.fuse != (mode == "fuse")) {
					b.Skipf("%s mounts do not work here", mode)
				}
				w.Teardown(context.Background(), false)
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					w := prep(fmt.Sprint("j", i))
					b.StopTimer()
					w.Teardown(context.Background(), false)
					b.StartTimer()
				}
				b.StopTimer()
				e.Close(context.Background())
			})
		}
	}
}

// TestOverlayChownCopiesNoData: where the kernel has metacopy, a chown
// of a file of the lower layer (as the OCI executor gives a workspace to
// the image's user) copies its metadata up, not its data; the file reads
// the same, and a later write copies it up whole.
func TestOverlayChownCopiesNoData(t *testing.T) {
	if !overlayWorksHere(t, overlayKernel) {
		t.Skip("kernel overlay mounts do not work here")
	}
	dir := t.TempDir()
	lower, target, layers := filepath.Join(dir, "lower"), filepath.Join(dir, "target"), filepath.Join(dir, "layers")
	for _, d := range []string{lower, target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Does this kernel take metacopy=on? (Asked here, not of mountOverlay,
	// so that a mountOverlay that no longer asks for it fails below.)
	opts, err := layerDirs(lower, layers, target)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("overlay", target, "overlay", 0, opts+",metacopy=on"); err != nil {
		t.Skipf("this kernel refuses metacopy=on: %v", err)
	}
	if err := unix.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("0123456789abcdef", 1<<16)) // 1 MiB
	if err := os.WriteFile(filepath.Join(lower, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mountOverlay(lower, layers, target); err != nil {
		t.Fatal(err)
	}
	defer unmountOverlay(target, layers, false, nil)
	if err := os.Chown(filepath.Join(target, "big"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(layers, "upper", "big"), &st); err != nil {
		t.Fatalf("the chown copied nothing up: %v", err)
	}
	if st.Uid != 1000 || st.Blocks*512 >= int64(len(data)) {
		t.Errorf("upper layer's file: uid %d, %d bytes on disk; want uid 1000 and no data copied", st.Uid, st.Blocks*512)
	}
	if got, err := os.ReadFile(filepath.Join(target, "big")); err != nil || string(got) != string(data) {
		t.Fatalf("the workspace's file after the chown: %v, %d bytes, want its data", err, len(got))
	}
	f, err := os.OpenFile(filepath.Join(target, "big"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("end")
	f.Close()
	if got, err := os.ReadFile(filepath.Join(target, "big")); err != nil || string(got) != string(data)+"end" {
		t.Errorf("the workspace's file after a write: %v, %d bytes", err, len(got))
	}
	if got, _ := os.ReadFile(filepath.Join(lower, "big")); string(got) != string(data) {
		t.Error("the write reached the lower layer")
	}
}
