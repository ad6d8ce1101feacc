package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nixflow/nixflow/templates"
)

func (a *app) initCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a ci.nix and a flake.nix to start from",
		Long: `Write a starting workflow (ci.nix) and a flake.nix that exposes it, into DIR
(default: the current directory). Existing files are left alone unless --force.`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			tmpl := templates.Default()
			names, err := fs.Glob(tmpl, "*")
			if err != nil {
				return err
			}
			sort.Strings(names)
			var exists []string
			for _, n := range names {
				if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
					exists = append(exists, n)
				}
			}
			if len(exists) > 0 && !force {
				verb := "exists"
				if len(exists) > 1 {
					verb = "exist"
				}
				return usageError(fmt.Errorf("%s already %s in %s", strings.Join(exists, " and "), verb, dir),
					"use --force to overwrite")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return infraError(err)
			}
			for _, n := range names {
				data, err := fs.ReadFile(tmpl, n)
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
					return infraError(err)
				}
				fmt.Fprintf(a.stdout, "wrote %s\n", filepath.Join(dir, n))
			}
			fmt.Fprintf(a.stdout, "next: nixflow run (runs ci.nix), nixflow plan (shows it)\n")
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}
