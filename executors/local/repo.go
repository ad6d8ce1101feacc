package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nixflow/nixflow/executors"
)

// copyWorkers is the number of files copyRepo copies at a time.
const copyWorkers = 4

// copyRepo fills the empty directory ws from repoDir as git sees it (see
// the package documentation). Paths under runDir and the exclude
// directories, should they lie inside repoDir, are left out. It returns
// the paths it copied (nil when it copied the whole tree) and whether ws
// is a clone of repoDir.
func copyRepo(ctx context.Context, repoDir, ws, runDir string, exclude []string) (names []string, clone bool, err error) {
	repoDir, err = filepath.Abs(repoDir)
	if err != nil {
		return nil, false, err
	}
	var skips []func(string) bool
	for _, d := range append([]string{runDir}, exclude...) {
		if s := under(repoDir, d); s != nil {
			skips = append(skips, s)
		}
	}
	var skip func(string) bool
	if len(skips) > 0 {
		skip = func(p string) bool {
			for _, s := range skips {
				if s(p) {
					return true
				}
			}
			return false
		}
	}
	g := gitRunner{env: gitEnviron(os.Environ())}
	inside, prefix, err := g.workTree(ctx, repoDir)
	if err != nil {
		return nil, false, err
	}
	src, err := os.OpenRoot(repoDir)
	if err != nil {
		return nil, false, err
	}
	defer src.Close()
	dst, err := os.OpenRoot(ws)
	if err != nil {
		return nil, false, err
	}
	defer dst.Close()
	if !inside {
		return nil, false, copyTree(ctx, src, ".", true, dst, ".", skip)
	}

	out, err := g.run(ctx, repoDir, nil, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return nil, false, err
	}
	names = splitNames(out, skip)
	clone = prefix == ""
	if clone {
		if err := g.cloneInto(ctx, repoDir, ws); err != nil {
			return nil, false, err
		}
	}
	if err := copyListed(ctx, src, dst, names); err != nil {
		return nil, false, err
	}
	if clone {
		return names, true, g.syncState(ctx, repoDir, ws)
	}
	return names, false, nil
}

// under returns a skip function for copyTree that leaves out dir, should
// it lie inside top, or nil.
func under(top, dir string) func(rel string) bool {
	resolve := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return p
	}
	rel, err := filepath.Rel(resolve(top), resolve(dir))
	if err != nil || !filepath.IsLocal(rel) {
		return nil
	}
	rel = filepath.ToSlash(rel)
	return func(p string) bool {
		return p == rel || strings.HasPrefix(p, rel+"/")
	}
}

// splitNames splits NUL-terminated names, dropping duplicates (ls-files
// lists an unmerged path once per stage) and those skip reports.
func splitNames(out []byte, skip func(string) bool) []string {
	seen := map[string]bool{}
	var names []string
	for raw := range bytes.SplitSeq(out, []byte{0}) {
		// Untracked nested repositories are listed with a trailing slash.
		name := strings.TrimSuffix(string(raw), "/")
		if name == "" || seen[name] || (skip != nil && skip(name)) {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	return names
}

// copyListed copies the listed paths from src to dst. Paths that do not
// exist are skipped (deleted tracked files); directories (submodules,
// nested repositories) are created empty.
func copyListed(ctx context.Context, src, dst *os.Root, names []string) error {
	// Create the parents first, in order, so that the workers need not.
	made := map[string]bool{".": true}
	for _, name := range names {
		if dir := path.Dir(name); !made[dir] {
			if err := dst.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			made[dir] = true
		}
	}
	work := make(chan string)
	errc := make(chan error, copyWorkers)
	var wg sync.WaitGroup
	for range copyWorkers {
		wg.Go(func() {
			for name := range work {
				if err := copyListedOne(ctx, src, dst, name); err != nil {
					errc <- fmt.Errorf("copy %q: %w", name, err)
					for range work {
					}
					return
				}
			}
		})
	}
	var err error
feed:
	for _, name := range names {
		select {
		case work <- name:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

func copyListedOne(ctx context.Context, src, dst *os.Root, name string) error {
	fi, err := src.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return dst.MkdirAll(name, 0o755)
	}
	return copyTree(ctx, src, name, false, dst, name, nil)
}

// gitRunner runs git commands.
type gitRunner struct {
	env []string
}

// gitEnviron drops from environ the variables that would point git at
// another repository than the one given with -C (as when nixflow runs from
// a git hook): those `git rev-parse --local-env-vars` lists. It sets
// LC_ALL=C.
func gitEnviron(environ []string) []string {
	local := []string{
		"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS",
		"GIT_CONFIG_COUNT", "GIT_OBJECT_DIRECTORY", "GIT_DIR", "GIT_WORK_TREE",
		"GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE", "GIT_INDEX_FILE",
		"GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", "GIT_PREFIX",
		"GIT_SHALLOW_FILE", "GIT_COMMON_DIR",
	}
	env := slices.DeleteFunc(slices.Clone(environ), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(local, name) || strings.HasPrefix(name, "GIT_CONFIG_KEY_") || strings.HasPrefix(name, "GIT_CONFIG_VALUE_")
	})
	// Messages in English: workTree reads one.
	return append(env, "LC_ALL=C")
}

// command is git with args, stopped with what it started when ctx ends:
// its process group is killed, and a process of it that keeps its
// output open (a helper git started, a wrapper's child) is not waited
// for past a second. A job's timeout or Ctrl-C during the copy of a
// repository would otherwise wait for a git that hangs.
func (g gitRunner) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := executors.OwnGroupContext(exec.CommandContext(ctx, "git", args...))
	cmd.Env = g.env
	cmd.WaitDelay = time.Second
	return cmd
}

// run runs git -C dir args with stdin as input and returns its standard
// output; the error carries its standard error.
func (g gitRunner) run(ctx context.Context, dir string, stdin []byte, args ...string) ([]byte, error) {
	cmd := g.command(ctx, append([]string{"-C", dir}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, msg)
		}
		return nil, fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return stdout.Bytes(), nil
}

// line runs git like run and returns its output's first line; ok is false
// when git exited with a non-zero status and wrote nothing to its standard
// error (how rev-parse --verify --quiet and symbolic-ref --quiet say no).
func (g gitRunner) line(ctx context.Context, dir string, args ...string) (string, bool, error) {
	cmd := g.command(ctx, append([]string{"-C", dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && stderr.Len() == 0:
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	first, _, _ := strings.Cut(stdout.String(), "\n")
	return first, true, nil
}

// workTree reports whether dir is inside a git work tree and, if so, its
// path relative to the work tree's top ("" at the top). Without git, or
// outside a repository, or in a bare repository or a .git directory, dir
// is not in a work tree; git failing otherwise (as on a repository of
// another user, which git does not trust) is an error, lest the whole
// directory, .git and ignored files included, be copied.
func (g gitRunner) workTree(ctx context.Context, dir string) (inside bool, prefix string, err error) {
	if _, err := os.Stat(dir); err != nil {
		return false, "", err
	}
	cmd := g.command(ctx, "-C", dir, "rev-parse", "--is-inside-work-tree", "--show-prefix")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return false, "", noGit(dir)
	case errors.As(err, &exit) && strings.Contains(stderr.String(), "not a git repository"):
		return false, "", nil
	case err != nil:
		return false, "", fmt.Errorf("git rev-parse: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(stdout.String(), "\n")
	if lines[0] != "true" || len(lines) < 2 {
		return false, "", nil
	}
	return true, lines[1], nil
}

// cloneInto makes ws, an empty directory, a clone of repoDir that shares
// its objects, without checking files out.
func (g gitRunner) cloneInto(ctx context.Context, repoDir, ws string) error {
	// --quiet does not silence the warning about an empty repository;
	// run discards standard error when git succeeds.
	_, err := g.run(ctx, ws, nil, "clone", "--quiet", "--shared", "--no-checkout", "--", repoDir, ws)
	return err
}

// syncState gives the clone ws the HEAD and the index of repoDir. The
// copied files must be in place: the index is refreshed against them.
func (g gitRunner) syncState(ctx context.Context, repoDir, ws string) error {
	// git clone checks out the branch that the source's HEAD points to,
	// but it guesses a branch when the source's HEAD is detached, and
	// cannot know an unborn branch: set HEAD explicitly.
	head, born, err := g.line(ctx, repoDir, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
	if err != nil {
		return err
	}
	branch, symbolic, err := g.line(ctx, repoDir, "symbolic-ref", "--quiet", "HEAD")
	if err != nil {
		return err
	}
	switch {
	case symbolic && born:
		if _, err := g.run(ctx, ws, nil, "update-ref", branch, head); err != nil {
			return err
		}
		fallthrough
	case symbolic:
		if _, err := g.run(ctx, ws, nil, "symbolic-ref", "HEAD", branch); err != nil {
			return err
		}
	case born:
		if _, err := g.run(ctx, ws, nil, "update-ref", "--no-deref", "HEAD", head); err != nil {
			return err
		}
	}
	// The index, staged changes and conflicts included. Its blobs are in
	// repoDir's object store, which the clone shares.
	entries, err := g.run(ctx, repoDir, nil, "ls-files", "--stage", "-z")
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := g.run(ctx, ws, entries, "update-index", "-z", "--index-info"); err != nil {
		return err
	}
	_, err = g.run(ctx, ws, nil, "update-index", "-q", "--refresh")
	return err
}
