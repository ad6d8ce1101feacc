package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/nixflow/nixflow/compiler"
)

// findWorkflow looks for the default workflow from the current directory
// upward, as nix looks for a flake: in each directory ./ci.nix, then the ci
// output of ./flake.nix, stopping at the top of the git repository.
// Outside a repository it stops below the home directory and below /: a
// ci.nix there is not the project of every directory under it (the
// current directory is always looked at). It returns the workflow as it
// is given on the command line (ci.nix, ../../ci.nix, ..#ci), or "", and
// the last directory it looked at.
func findWorkflow(home string) (src, last string) {
	wd, err := os.Getwd()
	if err != nil {
		return "", ""
	}
	top := gitTop(wd)
	if home != "" {
		home = filepath.Clean(home)
	}
	rel := "."
	for dir := wd; ; dir = filepath.Dir(dir) {
		switch {
		case fileExists(filepath.Join(dir, "ci.nix")):
			return filepath.Join(rel, "ci.nix"), dir
		case fileExists(filepath.Join(dir, "flake.nix")):
			return flakeDir(rel) + "#ci", dir
		}
		parent := filepath.Dir(dir)
		if dir == top || parent == dir || top == "" && (dir == home || parent == home || parent == filepath.Dir(parent)) {
			return "", dir
		}
		rel = filepath.Join(rel, "..")
	}
}

// gitTop is the nearest directory at or above dir that holds .git (a
// directory, or a file for worktrees and submodules), or "".
func gitTop(dir string) string {
	for {
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// The largest directory outside git that every job gets a copy of: past
// this, a workflow was most likely put in the wrong place (a downloads
// folder, a directory of build outputs).
const (
	maxCopyBytes = 1 << 30
	maxCopyFiles = 100_000
)

// checkTreeSize refuses a directory outside git whose copy would be over
// maxBytes or maxFiles. It stops walking as soon as it knows.
func checkTreeSize(repo string, maxBytes int64, maxFiles int, exclude []string) error {
	var bytes int64
	files := 0
	errTooBig := errors.New("too big")
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // the copy reports unreadable files itself
		}
		if d.IsDir() && slices.Contains(exclude, p) {
			return filepath.SkipDir
		}
		files++
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				bytes += fi.Size()
			}
		}
		if bytes > maxBytes || files > maxFiles {
			return errTooBig
		}
		return nil
	})
	if errors.Is(err, errTooBig) {
		return usageError(fmt.Errorf("refusing to copy %s into every job: it is not a git work tree, and it holds over %d files or %d MiB", repo, maxFiles, maxBytes>>20),
			"put the workflow in its project's directory, make the project a git repository (git init: ignored files are then not copied), give the project with --repo DIR, or set copyRepo = false on its jobs")
	}
	return nil
}

// jobHint says "did you mean --job NAME" when arg, given where a workflow
// belongs (nixflow run build), selects jobs of the default workflow.
func (a *app) jobHint(arg string) string {
	if strings.ContainsAny(arg, "/.#") || fileExists(arg) {
		return ""
	}
	plan, err := a.defaultPlan()
	if err != nil {
		return ""
	}
	if _, err := compiler.Select(plan, []string{arg}); err != nil {
		return ""
	}
	return fmt.Sprintf("did you mean --job %s? (%q is a job of %s)", arg, arg, plan.Name)
}

// defaultPlan compiles the workflow found from the current directory,
// quietly: for hints and completions.
func (a *app) defaultPlan() (*compiler.Plan, error) {
	src, _ := findWorkflow(a.getenv("HOME"))
	if src == "" {
		return nil, errors.New("no workflow")
	}
	name, data, generated, err := a.readWorkflow(src)
	if err != nil {
		return nil, err
	}
	if generated {
		return compiler.CompileGenerated(name, data)
	}
	return compiler.Compile(name, data)
}

// completeJobs completes --job with the job names of the workflow on the
// command line, or of the default workflow.
func (f *workflowFlags) completeJobs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	a := &app{stdin: os.Stdin, stdout: io.Discard, stderr: io.Discard, environ: os.Environ(), log: hclog.NewNullLogger()}
	src, _ := findWorkflow(os.Getenv("HOME"))
	if len(args) > 0 {
		src = args[0]
	}
	if src == "" {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	name, data, generated, err := a.readWorkflow(src)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	compile := compiler.Compile
	if generated {
		compile = compiler.CompileGenerated
	}
	plan, err := compile(name, data)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, j := range plan.Jobs {
		if strings.HasPrefix(j.Name, toComplete) {
			names = append(names, j.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
