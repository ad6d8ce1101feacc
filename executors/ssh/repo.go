package ssh

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixflow/nixflow/executors"
)

// copyRepo streams the repository as git sees it into the workspace: the
// tracked files and the untracked ones that are not ignored, with their
// changes (deleted files are absent); outside a git work tree, the whole
// directory. The run directory and spec.Exclude are left out.
func (w *workspace) copyRepo(ctx context.Context, spec executors.JobSpec) error {
	repo, err := filepath.Abs(spec.RepoDir)
	if err != nil {
		return err
	}
	var skips []string
	for _, d := range append([]string{spec.RunDir}, spec.Exclude...) {
		if d == "" {
			continue
		}
		if rel, ok := inside(repo, d); ok {
			skips = append(skips, rel)
		}
	}
	skip := func(rel string) bool {
		for _, s := range skips {
			if rel == s || strings.HasPrefix(rel, s+"/") {
				return true
			}
		}
		return false
	}
	names, err := gitFiles(ctx, repo)
	if err != nil {
		return err
	}
	return w.sendTar(ctx, []string{w.dir}, func(tw *tar.Writer) error {
		if names == nil {
			return filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(repo, p)
				rel = filepath.ToSlash(rel)
				if rel == "." {
					return nil
				}
				if skip(rel) {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				return writeEntry(tw, p, info, rel)
			})
		}
		made := map[string]bool{".": true}
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			if skip(name) {
				continue
			}
			p := filepath.Join(repo, filepath.FromSlash(name))
			fi, err := os.Lstat(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue // a deleted tracked file
			}
			if err != nil {
				return err
			}
			for dir := path.Dir(name); !made[dir]; dir = path.Dir(dir) {
				made[dir] = true
				if err := tw.WriteHeader(dirHeader(repo, dir)); err != nil {
					return err
				}
			}
			if fi.IsDir() {
				// A submodule or a nested repository: created empty.
				made[name] = true
				if err := tw.WriteHeader(dirHeader(repo, name)); err != nil {
					return err
				}
				continue
			}
			if err := writeEntry(tw, p, fi, name); err != nil {
				return err
			}
		}
		return nil
	})
}

// inside returns dir relative to top, if it lies inside it.
func inside(top, dir string) (string, bool) {
	resolve := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return p
	}
	rel, err := filepath.Rel(resolve(top), resolve(dir))
	if err != nil || !filepath.IsLocal(rel) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// gitFiles lists the files of the work tree at dir as git sees it,
// relative to dir; nil without git or outside a work tree.
func gitFiles(ctx context.Context, dir string) ([]string, error) {
	run := func(args ...string) ([]byte, error) {
		cmd := executors.OwnGroupContext(exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...))
		cmd.Env = append(gitEnviron(os.Environ()), "LC_ALL=C")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
	if _, err := exec.LookPath("git"); err != nil {
		return nil, nil
	}
	out, err := run("rev-parse", "--is-inside-work-tree")
	if err != nil {
		if strings.Contains(err.Error(), "not a git repository") {
			return nil, nil
		}
		return nil, err
	}
	if strings.TrimSpace(string(out)) != "true" {
		return nil, nil
	}
	out, err = run("ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	names := []string{}
	for raw := range bytes.SplitSeq(out, []byte{0}) {
		name := strings.TrimSuffix(string(raw), "/")
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	return names, nil
}

// gitEnviron drops the variables that would point git at another
// repository than the one given with -C (as in a git hook).
func gitEnviron(environ []string) []string {
	var env []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "GIT_DIR", name == "GIT_WORK_TREE", name == "GIT_INDEX_FILE", name == "GIT_OBJECT_DIRECTORY",
			name == "GIT_ALTERNATE_OBJECT_DIRECTORIES", name == "GIT_COMMON_DIR", name == "GIT_PREFIX",
			name == "GIT_CONFIG", name == "GIT_CONFIG_PARAMETERS", name == "GIT_CONFIG_COUNT",
			strings.HasPrefix(name, "GIT_CONFIG_KEY_"), strings.HasPrefix(name, "GIT_CONFIG_VALUE_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

// dirHeader is the archive's entry for the directory name of the
// repository: its mode and time as here (tar sets them as it ends: a
// header without a time would date it 1970), 0755 and now if it cannot be
// read.
func dirHeader(repo, name string) *tar.Header {
	hdr := &tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now(), Format: tar.FormatPAX}
	if fi, err := os.Lstat(filepath.Join(repo, filepath.FromSlash(name))); err == nil && fi.IsDir() {
		hdr.Mode, hdr.ModTime = int64(fi.Mode().Perm()), fi.ModTime()
	}
	return hdr
}
