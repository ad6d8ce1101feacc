package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/ec2"
	"github.com/nixflow/nixflow/executors/local"
	"github.com/nixflow/nixflow/executors/oci"
	"github.com/nixflow/nixflow/output"
	"github.com/nixflow/nixflow/timing"
)

func (a *app) runsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "runs",
		Short: "List past runs, oldest first",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.runsDir()
			if err != nil {
				return err
			}
			ids, err := listRuns(dir)
			if err != nil {
				return infraError(err)
			}
			if len(ids) == 0 {
				fmt.Fprintf(a.stdout, "no runs in %s\n", dir)
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tWORKFLOW\tRESULT\tJOBS\tDURATION\tPROJECT")
			for _, id := range ids {
				project := shortProject(runProject(filepath.Join(dir, id)), a.getenv("HOME"))
				res, err := actions.ReadResult(filepath.Join(dir, id))
				if err != nil {
					// No result yet: the run goes on, or its nixflow was
					// killed.
					state := "incomplete"
					if runActive(filepath.Join(dir, id)) {
						state = "running"
					}
					// The plan, written before any job starts, has
					// the name and the jobs.
					name, jobs := "-", "-"
					if plan, err := readRunPlan(filepath.Join(dir, id)); err == nil {
						name, jobs = plan.Name, fmt.Sprint(len(plan.Jobs))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t-\t%s\n", id, name, state, jobs, project)
					continue
				}
				result := "success"
				switch {
				case res.Cancelled:
					result = "interrupted"
				case res.Failed():
					result = "failure"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", id, res.Name, result, len(res.Jobs), timing.Human(res.Duration.Std()), project)
			}
			return tw.Flush()
		},
	}
}

func (a *app) logsCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "logs RUN [JOB]",
		Short:             "Print the logs of a run (RUN: an id, a unique prefix, or last)",
		Args:              rangeArgs(1, 2),
		ValidArgsFunction: a.completeRuns,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.runsDir()
			if err != nil {
				return err
			}
			id, err := findRun(dir, args[0])
			if err != nil {
				return err
			}
			runDir := filepath.Join(dir, id)
			jobs, err := runJobs(runDir)
			if err != nil {
				return infraError(err)
			}
			if len(args) == 2 {
				found := false
				for _, j := range jobs {
					found = found || j == args[1]
				}
				if !found && wasUnselected(runDir, args[1]) {
					return usageError(fmt.Errorf("job %q did not run in run %s: it was not selected (--job chose the jobs of that run)", args[1], id),
						"nixflow run --job "+args[1]+" runs it")
				}
				if !found {
					return usageError(fmt.Errorf("run %s has no job %q", id, args[1]))
				}
				return a.copyLog(runDir, args[1], false)
			}
			for _, j := range jobs {
				if err := a.copyLog(runDir, j, true); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// runPlan is what runs, logs and completion read of a run's plan.json.
type runPlan struct {
	Name string `json:"name"`
	Jobs []struct {
		Name string `json:"name"`
	} `json:"jobs"`
}

// readRunPlan reads the plan a run wrote before its first job.
func readRunPlan(runDir string) (*runPlan, error) {
	data, err := os.ReadFile(filepath.Join(runDir, "plan.json"))
	if err != nil {
		return nil, err
	}
	var plan runPlan
	if err := json.Unmarshal(data, &plan); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(runDir, "plan.json"), err)
	}
	return &plan, nil
}

// runJobs lists the jobs of a run, in plan order.
func runJobs(runDir string) ([]string, error) {
	plan, err := readRunPlan(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		// A damaged run directory: the jobs that have a log, in name order.
		logs, lerr := filepath.Glob(filepath.Join(runDir, "logs", "*.log"))
		if lerr != nil || len(logs) == 0 {
			return nil, fmt.Errorf("run %s has no plan.json and no job logs: its directory is damaged", filepath.Base(runDir))
		}
		var names []string
		for _, l := range logs {
			names = append(names, strings.TrimSuffix(filepath.Base(l), ".log"))
		}
		return names, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, j := range plan.Jobs {
		names = append(names, j.Name)
	}
	return names, nil
}

func (a *app) copyLog(runDir, job string, header bool) error {
	f, err := os.Open(output.LogPath(runDir, job))
	if os.IsNotExist(err) {
		why, ended := notRunReason(runDir, job)
		noLog, because := "no log", "it did not run: "+why
		switch {
		case !ended && runActive(runDir):
			// A running job's log appears with its first write.
			noLog, because = "no log yet", "the run is still going"
		case !ended:
			because = "the run was stopped before the job wrote to it"
		}
		if header {
			fmt.Fprintf(a.stdout, "== %s: %s (%s)\n", job, noLog, because)
			return nil
		}
		return usageError(fmt.Errorf("job %q has %s: %s", job, noLog, because))
	}
	if err != nil {
		return infraError(err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return infraError(fmt.Errorf("read %s: not a log file", f.Name()))
	}
	if header {
		fmt.Fprintf(a.stdout, "== %s\n", job)
	}
	_, err = io.Copy(a.stdout, f)
	return err
}

func (a *app) gcCommand() *cobra.Command {
	var keep int
	var olderThan time.Duration
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove old runs",
		Long: `Remove old runs from the state directory: all but the newest --keep runs, and,
with --older-than, also newer ones that ended longer ago than that. A run
whose nixflow is still running is never removed. Also remove the containers
(docker, podman) of runs whose nixflow process is gone, undo the workspace
mounts a killed run left (of runs kept, too), and remove the images built
from deps' closures that no container has used for an hour.`,
		Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keep < 0 {
				return usageError(fmt.Errorf("--keep must be 0 or more, got %d", keep))
			}
			dir, err := a.runsDir()
			if err != nil {
				return err
			}
			ids, err := listRuns(dir)
			if err != nil {
				return infraError(err)
			}
			var errs []error
			// Containers of runs whose nixflow was killed (SIGKILL, a
			// crash) are left running, their owner gone: they go first,
			// as they may hold their run's workspaces.
			if dryRun {
				if n, err := oci.Orphaned(cmd.Context(), a.environ); n > 0 {
					fmt.Fprintf(a.stdout, "would remove %s of runs that are gone\n", executors.Count(n, "container", "containers"))
				} else if err != nil {
					errs = append(errs, fmt.Errorf("look for containers of runs that are gone: %w", err))
				}
			} else {
				n, err := oci.Sweep(cmd.Context(), a.environ)
				if n > 0 {
					fmt.Fprintf(a.stdout, "removed %s of runs that are gone\n", executors.Count(n, "container", "containers"))
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("remove containers of runs that are gone: %w", err))
				}
			}
			now := time.Now()
			removed, failed := 0, 0
			for i, id := range ids {
				old := i < len(ids)-keep
				if olderThan > 0 && !old {
					if end, err := runEnd(filepath.Join(dir, id)); err == nil && now.Sub(end) > olderThan {
						old = true
					}
				}
				if !old {
					// Kept, but a run killed with SIGKILL may have left its
					// workspaces mounted: they go.
					if !dryRun && !runActive(filepath.Join(dir, id)) {
						if err := local.UnmountUnder(filepath.Join(dir, id)); err != nil {
							errs = append(errs, fmt.Errorf("unmount the workspaces of run %s: %w", id, err))
						}
					}
					continue
				}
				if runActive(filepath.Join(dir, id)) {
					fmt.Fprintf(a.stdout, "skipped %s: still running\n", id)
					continue
				}
				if n := liveInstances(filepath.Join(dir, id)); n > 0 {
					// Its records are what lets reap find them as a run
					// that is over.
					fmt.Fprintf(a.stdout, "skipped %s: %s not known to be terminated (nixflow ec2 reap)\n", id, executors.Count(n, "ec2 instance", "ec2 instances"))
					continue
				}
				if dryRun {
					fmt.Fprintf(a.stdout, "would remove %s\n", id)
					continue
				}
				// One run that cannot be removed stops neither the others
				// nor the rest of gc.
				if err := removeTree(filepath.Join(dir, id)); err != nil {
					errs = append(errs, fmt.Errorf("remove run %s: %w", id, err))
					failed++
					continue
				}
				removed++
			}
			if dryRun {
				if len(errs) > 0 {
					return infraError(errors.Join(errs...))
				}
				return nil
			}
			fmt.Fprintf(a.stdout, "removed %s, kept %d\n", executors.Count(removed, "run", "runs"), len(ids)-removed)
			// Then the images assembled from deps' closures that no
			// container uses any more.
			n, err := oci.PruneClosureImages(cmd.Context(), a.environ, oci.ClosureImageAge)
			if n > 0 {
				fmt.Fprintf(a.stdout, "removed %s unused for an hour\n", executors.Count(n, "closure image", "closure images"))
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove unused closure images: %w", err))
			}
			if failed > 0 && os.Getuid() != 0 {
				return infraError(errors.Join(errs...), "a container may have left files of root's in a run (docker as a user, and nixflow killed): remove them as root (sudo rm -rf RUN_DIR)")
			}
			if len(errs) > 0 {
				return infraError(errors.Join(errs...))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&keep, "keep", 20, "how many of the newest runs to keep")
	cmd.Flags().Var(daysDuration{&olderThan}, "older-than", "also remove runs that ended longer ago than this (e.g. 36h, 7d, 2w)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be removed, remove nothing")
	return cmd
}

// removeTree removes a directory even where a step left read-only
// directories in it, or workspaces still mounted (a run killed with
// SIGKILL leaves its overlays mounted).
func removeTree(dir string) error {
	if err := local.UnmountUnder(dir); err != nil {
		return err
	}
	return executors.RemoveTree(dir)
}

// liveInstances counts the ec2 instances a run launched that it did not
// see terminated.
func liveInstances(runDir string) int {
	recs, _ := ec2.Records(runDir)
	n := 0
	for _, r := range recs {
		if r.Terminated.IsZero() {
			n++
		}
	}
	return n
}
