package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/ec2"
)

func (a *app) ec2Command() *cobra.Command {
	var region string
	cmd := &cobra.Command{
		Use:   "ec2",
		Short: "Find what nixflow left on EC2: instances to reap, machine images",
		Long: `Commands for what the ec2 executor creates in an AWS account. They use the
standard AWS configuration (environment, profiles, SSO); AWS_ENDPOINT_URL
points them elsewhere.`,
	}
	cmd.PersistentFlags().StringVar(&region, "region", "", "AWS region (default: from the AWS configuration)")
	cmd.AddCommand(a.ec2ReapCommand(&region), a.ec2ImagesCommand(&region))
	return cmd
}

func (a *app) ec2ReapCommand(region *string) *cobra.Command {
	var olderThan time.Duration
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "reap",
		Short: "Terminate instances nixflow left running",
		Long: `Terminate the instances tagged by nixflow that are not terminated and whose run
is over (its result is written, or the nixflow that ran it is gone), whose
expiry passed or cannot be read, or, with --older-than, that were launched
longer ago than that. Runs this machine does not know keep their instances
until they expire.`,
		Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan < 0 {
				return usageError(fmt.Errorf("--older-than must be positive, got %s", olderThan))
			}
			ctx := cmd.Context()
			runs, err := a.runsDir()
			if err != nil {
				return err
			}
			opts := ec2.ReapOptions{
				OlderThan: olderThan, DryRun: dryRun,
				RunOver: func(id string) bool { return runOver(filepath.Join(runs, id)) },
			}
			var found []ec2.Reaped
			var errs []error
			targets := reapTargets(runs, *region)
			looked := map[reapTarget]bool{}
			for i, tg := range targets {
				c, err := ec2.NewClients(ctx, tg.region, tg.endpoint)
				if errors.Is(err, ec2.ErrNoRegion) && i == 0 && len(targets) > 1 {
					continue // the regions the runs here used are looked at
				}
				if errors.Is(err, ec2.ErrNoRegion) {
					return usageError(errors.New("no AWS region: give --region, or set AWS_REGION"))
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if looked[reapTarget{c.Region, tg.endpoint}] {
					continue
				}
				looked[reapTarget{c.Region, tg.endpoint}] = true
				f, err := ec2.Reap(ctx, c, opts)
				found = append(found, f...)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", c.Region, err))
				}
			}
			err = errors.Join(errs...)
			// Nothing found is said only when every region was looked at.
			if len(found) > 0 || err == nil {
				writeReaped(a.stdout, found, dryRun)
			}
			if !dryRun {
				// The keys of the runs that are over, left by a nixflow
				// killed before it could remove them.
				for _, f := range found {
					if f.Terminated && f.RunID != "" && filepath.Base(f.RunID) == f.RunID && runOver(filepath.Join(runs, f.RunID)) {
						if rerr := ec2.RemoveKeys(filepath.Join(runs, f.RunID)); rerr != nil {
							err = errors.Join(err, rerr)
						}
					}
				}
			}
			if ec2.NoCredentials(err) {
				return infraError(err, ec2.CredentialsHint)
			}
			if err != nil {
				return infraError(err, "run it again: reaping is idempotent")
			}
			return nil
		},
	}
	cmd.Flags().Var(daysDuration{&olderThan}, "older-than", "also terminate instances launched longer ago than this (e.g. 3h, 2d)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be terminated, terminate nothing")
	return cmd
}

// reapTarget is a region (and endpoint) reap looks in.
type reapTarget struct{ region, endpoint string }

// reapTargets are the regions reap looks in: the one given (--region:
// that one alone), else the configuration's, and those that the runs
// here launched instances in that are not known to be terminated (an
// executor's region, or endpoint, need not be the configuration's).
func reapTargets(runs, region string) []reapTarget {
	targets := []reapTarget{{region: region}}
	if region != "" {
		return targets
	}
	ids, _ := listRuns(runs)
	seen := map[reapTarget]bool{}
	for _, id := range ids {
		recs, _ := ec2.Records(filepath.Join(runs, id))
		for _, r := range recs {
			tg := reapTarget{r.Region, r.Endpoint}
			if r.Terminated.IsZero() && r.Region != "" && !seen[tg] {
				seen[tg] = true
				targets = append(targets, tg)
			}
		}
	}
	return targets
}

// runOver reports whether the run in dir is over: its result is written,
// or the nixflow that ran it is gone (it holds the run's lock while it
// lives; also every nixflow that launched an instance for it). A run this
// machine does not have is not known to be over.
func runOver(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, actions.ResultFileName)); err == nil {
		return true
	}
	if _, err := os.Stat(filepath.Join(dir, lockFile)); err == nil && !runActive(dir) {
		// Killed before it recorded an instance (during RunInstances).
		return true
	}
	recs, err := ec2.Records(dir)
	if err != nil || len(recs) == 0 {
		return false
	}
	for _, r := range recs {
		if processRunning(r.PID) {
			return false
		}
	}
	return true
}

func processRunning(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func writeReaped(w io.Writer, found []ec2.Reaped, dryRun bool) {
	if len(found) == 0 {
		fmt.Fprintln(w, "no instance to reap")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tRUN\tJOB\tSTATE\tREASON\tACTION")
	n := 0
	for _, f := range found {
		action := "would terminate"
		if !dryRun {
			action = "terminated"
			if !f.Terminated {
				action = "NOT terminated"
			} else {
				n++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.InstanceID, dash(f.RunID), dash(f.Job), f.State, f.Reason, action)
	}
	tw.Flush()
	if !dryRun {
		fmt.Fprintf(w, "terminated %s\n", executors.Count(n, "instance", "instances"))
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) ec2ImagesCommand(region *string) *cobra.Command {
	var prune bool
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the AMIs nixflow made from machine images",
		Long: `List the AMIs nixflow registered for ec2 executors' machine images, with the
store path each was made from and whether an instance uses it. --prune
deregisters those no instance uses and deletes their snapshots.`,
		Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := ec2.NewClients(ctx, *region, "")
			if err != nil {
				return infraError(err)
			}
			images, err := ec2.ListImages(ctx, c)
			if err != nil {
				return infraError(err)
			}
			if len(images) == 0 {
				fmt.Fprintln(a.stdout, "no image")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tCREATED\tIN USE\tSTORE PATH")
			for _, im := range images {
				use := "no"
				if im.InUse {
					use = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", im.ID, dash(im.Created), use, dash(im.StorePath))
			}
			tw.Flush()
			if !prune {
				return nil
			}
			return a.pruneImages(ctx, c, images)
		},
	}
	cmd.Flags().BoolVar(&prune, "prune", false, "deregister the images no instance uses, and delete their snapshots")
	return cmd
}

func (a *app) pruneImages(ctx context.Context, c *ec2.Clients, images []ec2.Image) error {
	n := 0
	for _, im := range images {
		if im.InUse {
			continue
		}
		if err := ec2.DeleteImage(ctx, c, im); err != nil {
			return infraError(err)
		}
		fmt.Fprintf(a.stdout, "deleted %s\n", im.ID)
		n++
	}
	fmt.Fprintf(a.stdout, "pruned %s\n", executors.Count(n, "image", "images"))
	return nil
}

// writeInstances says, after the summary of a run, which instances the
// run launched and whether each was terminated.
func writeInstances(w io.Writer, runDir string) {
	recs, err := ec2.Records(runDir)
	if err != nil {
		fmt.Fprintf(w, "warning: ec2 instance records: %v\n", err)
		return
	}
	for _, r := range recs {
		what := "job " + r.Job
		if r.Job == "" {
			what = "executor " + r.Executor
		}
		if !r.Terminated.IsZero() {
			fmt.Fprintf(w, "ec2: %s (%s) launched and terminated\n", r.InstanceID, what)
			continue
		}
		fmt.Fprintf(w, "ec2: %s (%s) launched and NOT terminated: run 'nixflow ec2 reap' (its shutdown timer ends it by %s)\n",
			r.InstanceID, what, r.ExpiresAt.Format(time.RFC3339))
	}
}
