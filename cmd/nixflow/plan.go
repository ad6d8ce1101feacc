package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
)

func (a *app) planCommand() *cobra.Command {
	var wf workflowFlags
	var format string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "plan [WORKFLOW]",
		Short: "Print the compiled plan (a dry run: nothing runs)",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := a.loadPlan(args, &wf)
			if err != nil {
				return err
			}
			// A plan of 50,000 jobs is megabytes of text: one write per
			// 64 KiB, not one per line.
			w := bufio.NewWriterSize(a.stdout, 64<<10)
			switch format {
			case "text":
				writePlanText(w, plan, verbose)
			case "json":
				if err := writePlanJSON(w, plan); err != nil {
					return err
				}
			case "dot":
				writePlanDot(w, plan)
			case "mermaid":
				writePlanMermaid(w, plan)
			default:
				return usageError(fmt.Errorf("unknown --format %q (known: text, json, dot, mermaid)", format))
			}
			return w.Flush()
		},
	}
	wf.register(cmd)
	wf.registerSchemaOnly(cmd)
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json, dot, mermaid")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "text format: also each step's command, env names (never values), deps and where the job runs")
	return cmd
}

// writePlanJSON writes p as json.Encoder with a two-space indent does,
// byte for byte, but one job at a time: the JSON of a plan of 50,000 jobs
// is tens of megabytes, which the encoder would hold whole.
func writePlanJSON(w io.Writer, p *compiler.Plan) error {
	shell := *p
	shell.Jobs = []*compiler.Job{}
	head, err := json.MarshalIndent(&shell, "", "  ")
	if err != nil {
		return err
	}
	// The plan's own key is the only one at this indentation.
	const empty = "\n  \"jobs\": []"
	at := strings.Index(string(head), empty)
	if at < 0 || len(p.Jobs) == 0 {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(head[:at+len(empty)-1])
	// One buffer for every job's text: a plan of 50,000 jobs leaves no
	// garbage of that size behind.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("    ", "  ")
	for i, j := range p.Jobs {
		buf.Reset()
		if err := enc.Encode(j); err != nil {
			return err
		}
		data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		bw.WriteString("\n    ")
		bw.Write(data)
		if i < len(p.Jobs)-1 {
			bw.WriteByte(',')
		}
	}
	bw.WriteString("\n  ]")
	bw.Write(head[at+len(empty):])
	bw.WriteByte('\n')
	return bw.Flush()
}

func writePlanText(w io.Writer, p *compiler.Plan, verbose bool) {
	fmt.Fprintf(w, "workflow %s: %s in %s\n", p.Name, executors.Count(len(p.Jobs), "job", "jobs"), executors.Count(len(p.Levels), "level", "levels"))
	for lvl, names := range p.Levels {
		fmt.Fprintf(w, "\nlevel %d:\n", lvl)
		for _, name := range names {
			j := p.Job(name)
			var attrs []string
			attrs = append(attrs, executorLabel(j.Executor))
			if len(j.Needs) > 0 {
				attrs = append(attrs, "needs "+strings.Join(j.Needs, ", "))
			}
			if c := j.Condition; c.Status != compiler.StatusSuccess || c.Command != "" {
				attrs = append(attrs, "if "+c.String())
			}
			if j.ContinueOnError {
				attrs = append(attrs, "continue on error")
			}
			if j.Timeout > 0 {
				attrs = append(attrs, "timeout "+j.Timeout.String())
			}
			if len(j.Inputs) > 0 {
				var in []string
				for _, i := range j.Inputs {
					in = append(in, i.Name)
				}
				attrs = append(attrs, "inputs "+strings.Join(in, ", "))
			}
			if len(j.Outputs) > 0 {
				var out []string
				for _, o := range j.Outputs {
					out = append(out, o.Name)
				}
				attrs = append(attrs, "outputs "+strings.Join(out, ", "))
			}
			fmt.Fprintf(w, "  %s (%s)\n", name, strings.Join(attrs, "; "))
			if verbose {
				writeJobDetails(w, p, j)
			}
			for i, s := range j.Steps {
				var sa []string
				if c := s.Condition; c.Status != compiler.StatusSuccess || c.Command != "" {
					sa = append(sa, "if "+c.String())
				}
				if s.Retry.MaxAttempts > 1 {
					sa = append(sa, fmt.Sprintf("retry %dx %s %s..%s", s.Retry.MaxAttempts, s.Retry.Backoff, s.Retry.MinTime, s.Retry.MaxTime))
				}
				if s.Timeout > 0 {
					sa = append(sa, "timeout "+s.Timeout.String())
				}
				if s.ContinueOnError {
					sa = append(sa, "continue on error")
				}
				if len(s.Deps) > 0 {
					sa = append(sa, executors.Count(len(s.Deps), "dep", "deps"))
				}
				if s.Workdir != "" {
					sa = append(sa, "in "+s.Workdir)
				}
				line := fmt.Sprintf("    %d. %s", i+1, s.Name)
				if len(sa) > 0 {
					line += " (" + strings.Join(sa, "; ") + ")"
				}
				fmt.Fprintln(w, line)
				if verbose {
					writeStepDetails(w, s)
				}
			}
		}
	}
}

func executorLabel(e compiler.Executor) string {
	label := e.Type
	switch e.Type {
	case "oci":
		label += " " + e.OCI.Image
	case "ssh":
		label += " " + sshLabel(e.SSH)
	case "ec2":
		label += " " + e.EC2.InstanceType
	}
	if e.Name != "" {
		label += " " + strconv.Quote(e.Name)
	}
	return label
}

// sshLabel names an ssh executor's host, or its pool: "pool a,b,c×4",
// where ×N is a host's maxJobs other than 1.
func sshLabel(s *compiler.SSHExecutor) string {
	if len(s.Hosts) == 0 {
		return s.Host
	}
	names := make([]string, len(s.Hosts))
	for i, h := range s.Hosts {
		names[i] = h.Host
		if h.MaxJobs != 1 {
			names[i] += fmt.Sprintf("×%d", h.MaxJobs)
		}
	}
	return "pool " + strings.Join(names, ",")
}

func writePlanDot(w io.Writer, p *compiler.Plan) {
	fmt.Fprintf(w, "digraph %s {\n  rankdir=LR;\n  node [shape=box];\n", strconv.Quote(p.Name))
	for _, j := range p.Jobs {
		fmt.Fprintf(w, "  %s;\n", strconv.Quote(j.Name))
	}
	for _, j := range p.Jobs {
		for _, n := range j.Needs {
			fmt.Fprintf(w, "  %s -> %s;\n", strconv.Quote(n), strconv.Quote(j.Name))
		}
	}
	fmt.Fprintln(w, "}")
}

func writePlanMermaid(w io.Writer, p *compiler.Plan) {
	fmt.Fprintln(w, "graph LR")
	id := map[string]string{}
	for i, j := range p.Jobs {
		id[j.Name] = fmt.Sprintf("j%d", i)
		fmt.Fprintf(w, "  %s[\"%s\"]\n", id[j.Name], strings.ReplaceAll(j.Name, `"`, "#quot;"))
	}
	for _, j := range p.Jobs {
		for _, n := range j.Needs {
			fmt.Fprintf(w, "  %s --> %s\n", id[n], id[j.Name])
		}
	}
}
