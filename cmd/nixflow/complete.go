package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// completeRuns completes the RUN of `logs` with run ids, newest first,
// and "last"; then the JOB with the jobs of that run.
func (a *app) completeRuns(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	dir, err := a.runsDir()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	switch len(args) {
	case 0:
		ids, _ := listRuns(dir)
		slices.Reverse(ids)
		for _, id := range append([]string{"last"}, ids...) {
			if strings.HasPrefix(id, toComplete) {
				out = append(out, id)
			}
		}
	case 1:
		id, err := findRun(dir, args[0])
		if err != nil {
			break
		}
		jobs, _ := runJobs(dir + "/" + id)
		for _, j := range jobs {
			if strings.HasPrefix(j, toComplete) {
				out = append(out, j)
			}
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}
