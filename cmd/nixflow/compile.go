package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nixflow/nixflow/compiler/script"
)

type compileFlags struct {
	wf          workflowFlags
	output      string
	maxParallel int
	schedule    string
	localOnly   bool
}

func (a *app) compileCommand() *cobra.Command {
	var f compileFlags
	cmd := &cobra.Command{
		Use:   "compile [WORKFLOW]",
		Short: "Write the workflow as one self-contained bash script",
		Long: `Write the workflow as one self-contained bash script, with the plan embedded
and everything it needs inline: run it with bash, or on another host with
ssh HOST < SCRIPT. Jobs must use the local executor (--local-only maps the
others to it).`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.compile(args, &f)
		},
	}
	f.wf.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "-", "write the script to this file (executable), - for standard output")
	fl.IntVar(&f.maxParallel, "max-parallel", -1, "default cap on running jobs (0: no limit; -1: the CPUs of the host running it)")
	fl.StringVar(&f.schedule, "schedule", "ready", "default schedule: ready or levels")
	fl.BoolVar(&f.localOnly, "local-only", false, "run jobs of other executors locally, with a warning, instead of refusing them")
	return cmd
}

func (a *app) compile(args []string, f *compileFlags) error {
	if f.maxParallel < -1 {
		return usageError(fmt.Errorf("--max-parallel must be -1 (the host's CPUs), 0 (no limit) or more, got %d", f.maxParallel))
	}
	var levels bool
	switch f.schedule {
	case "ready":
	case "levels":
		levels = true
	default:
		return usageError(fmt.Errorf("unknown --schedule %q (known: ready, levels)", f.schedule))
	}
	if f.output == "" {
		return usageError(errors.New("-o: empty path (a file, or - for standard output)"))
	}
	if f.output != "-" {
		if err := checkOutputFile("-o", f.output); err != nil {
			return usageError(err)
		}
	}
	plan, err := a.loadPlan(args, &f.wf)
	if err != nil {
		return err
	}
	source := f.wf.source
	if source == "" {
		source = "the default workflow"
	}
	out, warnings, err := script.Compile(plan, script.Options{
		Source: source, MaxParallel: f.maxParallel, Levels: levels, LocalOnly: f.localOnly,
	})
	var xe *script.ExecutorError
	if errors.As(err, &xe) {
		return usageError(err, "run those jobs with nixflow run, or compile with --local-only to run them locally")
	}
	var pe *script.ProviderError
	if errors.As(err, &pe) {
		return usageError(err, "use a command provider that prints KEY=VALUE lines, or run the workflow with nixflow run")
	}
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", w)
	}
	if f.output == "-" {
		_, err := a.stdout.Write(out)
		return err
	}
	if err := writeExecutable(f.output, out); err != nil {
		return infraError(fmt.Errorf("write %s: %w", f.output, osErr(err)))
	}
	return nil
}

// writeExecutable writes data to path, mode 0755, whole or not at all
// (see writeOutputFile).
func writeExecutable(path string, data []byte) error {
	return writeOutputFile(path, data, 0o755)
}
