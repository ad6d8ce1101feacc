package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// A run copies the repository once. The first job of an executor that
// needs it materialises it as git sees it (the selection of copyRepo, git
// state included) in <RunDir>/snapshots/<n>, and every job's workspace
// starts from that snapshot:
//
//   - an overlay mount, the snapshot as the read-only lower layer and a
//     per-job upper layer in <RunDir>/overlays/<job>: O(1), whatever the
//     size of the repository. A kernel overlay where the kernel allows it
//     (nixflow running as root or with CAP_SYS_ADMIN, overlayfs, a run
//     directory that can hold an upper layer), else fuse-overlayfs where
//     it is installed and /dev/fuse usable (any user);
//   - else a copy of the snapshot (copy_file_range: reflinks where the file
//     system has them), with no git process but one index refresh.
//
// Jobs thus all start from the tree as it was when the first of them
// started, and nothing a job writes reaches the snapshot or another job.

// runSnapshots are the repository snapshots of this process, by source
// and run. Every executor of a run that starts jobs from the repository
// on this machine (local, and the host side of the oci and custom
// executors) uses the same snapshot: one copy, and one moment for all
// the run's jobs. The last executor to close removes it.
var runSnapshots struct {
	mu sync.Mutex
	m  map[string]*snapshot
	// made numbers the snapshots' directories.
	made int
}

// snapshots are the repository snapshots one executor uses, by source.
type snapshots struct {
	mu sync.Mutex
	m  map[string]*snapshot
	// overlay is the first way to start a workspace not yet found to fail
	// here: a kernel overlay, then fuse-overlayfs, then a copy.
	overlay overlayKind
	// spare are the layers (upper and work directories) of kernel
	// overlays that ended, emptied, by run directory: a job's overlay
	// takes one rather than making its own, as making and removing
	// directories is most of what a checkout costs on some file systems
	// (ext4 without a journal: about a millisecond each).
	spare map[string][]string
}

// overlayKind is a way to start a workspace from a snapshot.
type overlayKind int

const (
	overlayKernel overlayKind = iota // a kernel overlay mount
	overlayFUSE                      // a fuse-overlayfs mount
	overlayNone                      // a copy of the snapshot
)

// snapshot is one materialised repository.
type snapshot struct {
	// key is its place in runSnapshots; users counts the executors
	// using it (runSnapshots.mu).
	key   string
	users int

	mu    sync.Mutex
	dir   string
	ready bool
	// git reports that the snapshot is a clone (its workspaces need their
	// index refreshed after a copy).
	git bool
	// names are the paths copied into it, for copies from it.
	names []string
}

// get returns the snapshot of repoDir for a run, materialising it on
// first use. A failed or cancelled materialisation is tried again by the
// next job.
func (s *snapshots) get(ctx context.Context, repoDir, runDir string, exclude []string) (*snapshot, error) {
	key := strings.Join(append([]string{repoDir, runDir}, exclude...), "\x00")
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]*snapshot{}
	}
	snap, ok := s.m[key]
	if !ok {
		snap = useSnapshot(key, runDir)
		s.m[key] = snap
	}
	s.mu.Unlock()

	snap.mu.Lock()
	defer snap.mu.Unlock()
	if snap.ready {
		return snap, nil
	}
	_ = removeTree(snap.dir) // what a failed attempt left
	if err := os.MkdirAll(snap.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create repository snapshot: %w", err)
	}
	names, git, err := copyRepo(ctx, repoDir, snap.dir, runDir, exclude)
	if err != nil {
		_ = removeTree(snap.dir)
		return nil, err
	}
	snap.names, snap.git, snap.ready = names, git, true
	return snap, nil
}

// useSnapshot returns the run's snapshot of key, made (not yet
// materialised) on first use, counting one more executor using it.
func useSnapshot(key, runDir string) *snapshot {
	runSnapshots.mu.Lock()
	defer runSnapshots.mu.Unlock()
	if runSnapshots.m == nil {
		runSnapshots.m = map[string]*snapshot{}
	}
	snap, ok := runSnapshots.m[key]
	if !ok {
		snap = &snapshot{key: key, dir: filepath.Join(runDir, "snapshots", strconv.Itoa(runSnapshots.made))}
		runSnapshots.made++
		runSnapshots.m[key] = snap
	}
	snap.users++
	return snap
}

// release counts one executor less using snap, and reports whether it
// was the last: the snapshot is then forgotten, for its caller to remove.
func (snap *snapshot) release() bool {
	runSnapshots.mu.Lock()
	defer runSnapshots.mu.Unlock()
	snap.users--
	if snap.users > 0 {
		return false
	}
	delete(runSnapshots.m, snap.key)
	return true
}

// remove lets go of the executor's snapshots, removing those no other
// executor uses, and removes its spare layers. Workspaces made from them
// must be gone.
func (s *snapshots) remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, snap := range s.m {
		if !snap.release() {
			continue
		}
		snap.mu.Lock()
		if err := removeTree(snap.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove repository snapshot: %w", err))
		}
		snap.mu.Unlock()
	}
	for _, list := range s.spare {
		for _, layers := range list {
			if err := removeTree(layers); err != nil {
				errs = append(errs, fmt.Errorf("remove overlay layers: %w", err))
			}
		}
	}
	s.m, s.spare = nil, nil
	return errors.Join(errs...)
}

// takeLayers returns the layers directory for job's overlay: spare
// layers of the run, or <RunDir>/overlays/<job>.
func (s *snapshots) takeLayers(runDir, job string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if list := s.spare[runDir]; len(list) > 0 {
		s.spare[runDir] = list[:len(list)-1]
		return list[len(list)-1]
	}
	return filepath.Join(runDir, "overlays", job)
}

// giveLayers keeps the layers of an overlay that was unmounted whole
// for the next job: its upper layer emptied (what the job wrote), its
// work directory as the kernel leaves it. Layers that cannot be emptied
// are removed.
func (s *snapshots) giveLayers(runDir, layers string) {
	if err := emptyDir(filepath.Join(layers, "upper")); err != nil {
		_ = removeTree(layers)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spare == nil {
		s.spare = map[string][]string{}
	}
	s.spare[runDir] = append(s.spare[runDir], layers)
}

// emptyDir removes what dir holds.
func emptyDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := removeTree(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// next is the way to try first.
func (s *snapshots) next() overlayKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlay
}

// failed records that kind does not work here.
func (s *snapshots) failed(kind overlayKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overlay == kind {
		s.overlay = kind + 1
	}
}

// materialise fills the empty workspace w.dir from snap: by an overlay
// mount where one works (the kernel's as root, else fuse-overlayfs),
// else by a copy.
func (s *snapshots) materialise(ctx context.Context, snap *snapshot, w *workspace, runDir, job string) error {
	for kind := s.next(); kind < overlayNone; kind++ {
		var err error
		layers := filepath.Join(runDir, "overlays", job)
		if kind == overlayKernel {
			layers = s.takeLayers(runDir, job)
			err = mountOverlay(snap.dir, layers, w.dir)
		} else {
			err = mountFUSEOverlay(ctx, snap.dir, layers, w.dir)
		}
		if err == nil {
			w.overlay, w.fuse = layers, kind == overlayFUSE
			if kind == overlayKernel {
				w.reuseLayers = func() { s.giveLayers(runDir, layers) }
			}
			return nil
		}
		_ = removeTree(layers)
		if errors.Is(err, errOverlayPaths) {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.failed(kind)
	}
	return snap.copyTo(ctx, w.dir)
}

// copyTo copies the snapshot into the empty directory ws.
func (snap *snapshot) copyTo(ctx context.Context, ws string) error {
	src, err := os.OpenRoot(snap.dir)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenRoot(ws)
	if err != nil {
		return err
	}
	defer dst.Close()
	if snap.names == nil && !snap.git {
		// Not a repository: the snapshot is the whole tree.
		return copyTree(ctx, src, ".", false, dst, ".", nil)
	}
	if snap.git {
		if err := copyTree(ctx, src, ".git", false, dst, ".git", nil); err != nil {
			return err
		}
	}
	if err := copyListed(ctx, src, dst, snap.names); err != nil {
		return err
	}
	if snap.git {
		// The copies' inodes and times differ from what the index holds.
		g := gitRunner{env: gitEnviron(os.Environ())}
		_, err := g.run(ctx, ws, nil, "update-index", "-q", "--refresh")
		return err
	}
	return nil
}

// errOverlayPaths is returned for paths an overlay mount cannot name.
var errOverlayPaths = errors.New("paths unfit for overlay mount options")
