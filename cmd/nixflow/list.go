package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nixflow/nixflow/executors"
)

func (a *app) listCommand() *cobra.Command {
	var wf workflowFlags
	cmd := &cobra.Command{
		Use:   "list [WORKFLOW]",
		Short: "List the jobs of a workflow",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := a.loadPlan(args, &wf)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tLEVEL\tEXECUTOR\tSTEPS\tNEEDS")
			for _, j := range plan.Jobs {
				needs := strings.Join(j.Needs, ",")
				if needs == "" {
					needs = "-"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", j.Name, j.Level, executorLabel(j.Executor), len(j.Steps), needs)
			}
			return tw.Flush()
		},
	}
	wf.register(cmd)
	return cmd
}

func (a *app) validateCommand() *cobra.Command {
	var wf workflowFlags
	cmd := &cobra.Command{
		Use:   "validate [WORKFLOW]",
		Short: "Check a workflow and report every problem at once",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := a.loadPlan(args, &wf)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "workflow %s is valid: %s in %s\n", plan.Name,
				executors.Count(len(plan.Jobs), "job", "jobs"), executors.Count(len(plan.Levels), "level", "levels"))
			return nil
		},
	}
	wf.registerSchemaOnly(cmd)
	return cmd
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print nixflow's version",
		Args:  rangeArgs(0, 0),
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(a.stdout, "nixflow %s (JSON job graph v1)\n", version)
		},
	}
}
