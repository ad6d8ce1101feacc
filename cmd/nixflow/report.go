package main

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nixflow/nixflow/actions"
	runreport "github.com/nixflow/nixflow/report"
)

// reportFlags are nixflow run's flags that write a report of the run when
// it ends.
type reportFlags struct {
	html  string
	trace string
}

func (f *reportFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.html, "report", "", "at the end, write a report of the run (timeline, job graph, failures) to this HTML file")
	fl.StringVar(&f.trace, "trace", "", "at the end, write the run as Chrome trace event JSON (Perfetto, chrome://tracing) to this file")
}

// writeRunReports writes the files --report and --trace ask for, from the
// run directory, through the run's masker. It says where they went on out.
func (a *app) writeRunReports(runDir string, f reportFlags, masker *actions.Masker, out io.Writer) error {
	if f.html == "" && f.trace == "" {
		return nil
	}
	for _, w := range []struct{ path, format, flag string }{{f.html, "html", "--report"}, {f.trace, "trace", "--trace"}} {
		if w.path == "" {
			continue
		}
		if err := writeReport(runDir, w.format, w.path, masker); err != nil {
			return infraError(fmt.Errorf("%s: %w", w.flag, err))
		}
		fmt.Fprintf(out, "%s: %s\n", strings.TrimPrefix(w.flag, "--"), w.path)
	}
	return nil
}

// renderReport renders the run in runDir as format: "html" or "trace".
func renderReport(runDir, format string, masker *actions.Masker) ([]byte, error) {
	r, err := runreport.Load(runDir)
	if err != nil {
		return nil, err
	}
	r.Mask(masker.Mask)
	var buf bytes.Buffer
	if format == "trace" {
		err = runreport.WriteTrace(&buf, r)
	} else {
		err = runreport.WriteHTML(&buf, r)
	}
	return buf.Bytes(), err
}

// writeReport renders the run in runDir as format to path, written whole
// or not at all.
func writeReport(runDir, format, path string, masker *actions.Masker) error {
	data, err := renderReport(runDir, format, masker)
	if err != nil {
		return err
	}
	if err := writeOutputFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, osErr(err))
	}
	return nil
}

func (a *app) reportCommand() *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "report [RUN]",
		Short: "Write a report of a run: an HTML timeline and job graph, or a Chrome trace",
		Long: `Write a report of a past run (RUN: an id, a unique prefix, or last; default last).

--format html (the default) writes one self-contained HTML page: the run's
timeline with steps, retries and queued time, the critical path, the job
graph, where each job ran, and the last lines of failed steps. --format trace
writes Chrome trace event JSON, for Perfetto (ui.perfetto.dev) or
chrome://tracing. Without -o the report goes to standard output.`,
		Args: rangeArgs(0, 1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return a.completeRuns(cmd, args, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "html", "trace":
			default:
				return usageError(fmt.Errorf("unknown --format %q (known: html, trace)", format))
			}
			dir, err := a.runsDir()
			if err != nil {
				return err
			}
			ref := "last"
			if len(args) == 1 {
				ref = args[0]
			}
			id, err := findRun(dir, ref)
			if err != nil {
				return err
			}
			if output != "" && output != "-" {
				if err := checkOutputFile("-o", output); err != nil {
					return usageError(err)
				}
			}
			// What the run directory holds was masked as the run wrote it;
			// the secrets themselves are not kept to mask again.
			masker := actions.NewMasker()
			if output == "" || output == "-" {
				data, err := renderReport(filepath.Join(dir, id), format, masker)
				if err != nil {
					return infraError(fmt.Errorf("run %s: %w", id, err))
				}
				_, err = a.stdout.Write(data)
				return err
			}
			if err := writeReport(filepath.Join(dir, id), format, output, masker); err != nil {
				return infraError(fmt.Errorf("run %s: %w", id, err))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the report to this file (default: standard output)")
	cmd.Flags().StringVar(&format, "format", "html", "html: a self-contained page; trace: Chrome trace event JSON")
	return cmd
}
