package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nixflow/nixflow/compiler"
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

var (
	unknownCommand = regexp.MustCompile(`^unknown command "([^"]*)" for "([^"]*)"`)
	unknownFlag    = regexp.MustCompile(`^unknown (?:shorthand )?flag: '?-?-?([^' ]+)'?`)
	flagName       = regexp.MustCompile(`(?m)^\s+(?:-\S, )?--([a-z][a-z0-9-]*)`)
)

// cobraUsage turns cobra's own errors for an unknown command or flag into
// usage errors (exit status 2) with one "did you mean" hint, instead of
// cobra's multi-line suggestion block.
func cobraUsage(root, cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if m := unknownCommand.FindStringSubmatch(msg); m != nil {
		var hints []string
		// The closest of cobra's candidates (which come in the order of
		// the commands: "rn" is as close to "gc" as to "run" for it).
		if s := root.SuggestionsFor(m[1]); len(s) > 0 {
			best := s[0]
			if c := compiler.Suggest(m[1], s); c != "" {
				best = c
			}
			hints = append(hints, fmt.Sprintf("did you mean %q?", "nixflow "+best))
		}
		hints = append(hints, "'nixflow --help' lists the commands")
		return usageError(fmt.Errorf("unknown command %q", m[1]), hints...)
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.code == ExitUsage && cmd != nil {
		if m := unknownFlag.FindStringSubmatch(msg); m != nil {
			var names []string
			for _, m := range flagName.FindAllStringSubmatch(cmd.Flags().FlagUsages()+cmd.InheritedFlags().FlagUsages(), -1) {
				names = append(names, m[1])
			}
			if s := compiler.Suggest(m[1], names); s != "" && len(ee.hints) == 0 {
				ee.hints = append(ee.hints, fmt.Sprintf("did you mean --%s?", s))
			}
			if s := otherCase(cmd, m[1]); s != nil && len(ee.hints) == 0 && strings.HasPrefix(msg, "unknown shorthand") {
				ee.hints = append(ee.hints, fmt.Sprintf("did you mean -%s (--%s)?", s.Shorthand, s.Name))
			}
		}
	}
	return err
}

// otherCase returns the flag whose one-letter shorthand is short in the
// other case (-j for -J), or nil.
func otherCase(cmd *cobra.Command, short string) *pflag.Flag {
	if len(short) != 1 {
		return nil
	}
	other := strings.ToLower(short)
	if other == short {
		other = strings.ToUpper(short)
	}
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
		if f := fs.ShorthandLookup(other); f != nil {
			return f
		}
	}
	return nil
}
