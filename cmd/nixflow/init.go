package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nixflow/nixflow/templates"
)

// flakeSnippet is what a project that has a flake adds to it.
const flakeSnippet = `  inputs.nixflow.url = "github:nixflow/nixflow";
  # and in outputs, for each system (nix build .#ci: the pipeline as one
  # bash script; nix run .#ci: run it with nixflow):
  packages.${system}.ci = import ./ci.nix {
    pkgs = nixpkgs.legacyPackages.${system};
    nixflow = nixflow.lib.${system};
  };
  apps.${system}.ci = self.packages.${system}.ci.app;`

func (a *app) initCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a ci.nix (and a flake.nix) to start from",
		Long: `Write a starting workflow (ci.nix) and a flake.nix that exposes it, into DIR
(default: the current directory). An existing flake.nix is left alone: only
ci.nix is written, with what to add to the flake. An existing ci.nix is not
overwritten unless --force.`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
				return usageError(fmt.Errorf("%s is not a directory", dir))
			}
			tmpl := templates.Default()
			names := []string{"ci.nix", "flake.nix"}
			// An existing flake.nix is left alone. One that refers to
			// ci.nix and nixflow (init's own, written before) needs no
			// advice on what to add.
			hasFlake, wired := false, false
			if _, err := os.Lstat(filepath.Join(dir, "flake.nix")); err == nil {
				hasFlake = true
				names = names[:1]
				data, _ := os.ReadFile(filepath.Join(dir, "flake.nix"))
				wired = bytes.Contains(data, []byte("ci.nix")) && bytes.Contains(data, []byte("nixflow"))
			}
			if !force {
				for _, n := range names {
					if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
						return usageError(fmt.Errorf("%s already exists in %s", n, dir), "use --force to overwrite it")
					}
				}
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return infraError(err)
			}
			for _, n := range names {
				data, err := fs.ReadFile(tmpl, n)
				if err != nil {
					return err
				}
				if err := writeNew(filepath.Join(dir, n), data, force); err != nil {
					return infraError(err)
				}
				fmt.Fprintf(a.stdout, "wrote %s\n", filepath.Join(dir, n))
			}
			switch {
			case wired:
				fmt.Fprintf(a.stdout, "kept flake.nix (it refers to ci.nix and nixflow already)\n")
			case hasFlake:
				fmt.Fprintf(a.stdout, "kept your flake.nix; to run the workflow with `nix run .#ci`, add:\n%s\n", flakeSnippet)
			}
			var next []string
			if dir != "." {
				next = append(next, "cd "+dir)
			}
			if inGit(dir) {
				// Flakes in git see only the files git knows.
				next = append(next, "git add "+strings.Join(names, " "))
			}
			next = append(next, "nixflow run")
			fmt.Fprintf(a.stdout, "next: %s (nixflow plan shows what would run)\n", strings.Join(next, " && "))
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing ci.nix (an existing flake.nix is never overwritten)")
	return cmd
}

// writeNew creates path with data. It never writes through a symbolic
// link: with replace, what is there is removed first; without, an
// existing path is an error.
func writeNew(path string, data []byte, replace bool) error {
	if replace {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func inGit(dir string) bool {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--is-inside-work-tree").Output()
	return err == nil && strings.TrimSpace(string(out)) == "true"
}
