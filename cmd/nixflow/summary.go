package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/timing"
)

// writeSummary prints the table of jobs at the end of a run, then the last
// lines of each failed step, then one line that says what happened.
func writeSummary(out io.Writer, res *actions.Result, masker *actions.Masker, color bool) {
	// The table's writer writes each cell apart: 8,000 writes for 1,000
	// jobs, each a system call, on a terminal a redraw.
	w := bufio.NewWriter(out)
	defer w.Flush()
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + "\x1b[0m"
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// Where the jobs ran is shown once some ran elsewhere than here.
	where := false
	for _, j := range res.Jobs {
		where = where || (j.Where != "" && j.Where != "local")
	}
	results := resultCells(res, color)
	if where {
		fmt.Fprintf(tw, "JOB\t%s\tDURATION\tATTEMPTS\tWHERE\n", results[""])
	} else {
		fmt.Fprintf(tw, "JOB\t%s\tDURATION\tATTEMPTS\n", results[""])
	}
	for _, j := range res.Jobs {
		result := results[j.Job]
		dur, attempts := "-", "-"
		if j.Duration > 0 || len(j.Steps) > 0 {
			dur = timing.Human(j.Duration.Std())
		}
		if n := mostAttempts(j); n > 0 {
			attempts = strconv.Itoa(n)
		}
		if where {
			at := j.Where
			if at == "" {
				at = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.Job, result, dur, attempts, at)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Job, result, dur, attempts)
	}
	tw.Flush()

	var failed, allowed, skipped, cancelled int
	domains := map[actions.Domain]bool{}
	for _, j := range res.Jobs {
		switch {
		case j.Status == event.StatusFailure && j.Allowed:
			allowed++
		case j.Status == event.StatusFailure:
			failed++
			domains[j.Domain] = true
		case j.Status == event.StatusSkipped:
			skipped++
		case j.Status == event.StatusCancelled:
			cancelled++
		}
		if j.Status != event.StatusFailure {
			continue
		}
		if j.Reason != "" {
			fmt.Fprintf(w, "\n%s %s: %s\n", paint("\x1b[31m", "✗"), j.Job, j.Reason)
		}
		for _, s := range j.Steps {
			if s.Status != event.StatusFailure || len(s.Tail) == 0 {
				continue
			}
			fmt.Fprintf(w, "  last lines of %s › %s:\n", j.Job, s.Step)
			for _, line := range s.Tail {
				fmt.Fprintf(w, "  │ %s\n", masker.Mask(line))
			}
		}
	}

	var parts []string
	if res.Err != "" {
		fmt.Fprintln(w)
		for _, line := range strings.Split(res.Err, "\n") {
			switch {
			case strings.TrimSpace(line) == "":
			case strings.HasPrefix(line, "  "):
				// The continuation of the problem above (a tool's words).
				fmt.Fprintf(w, "%s\n", line)
			default:
				fmt.Fprintf(w, "%s %s\n", paint("\x1b[31m", "✗"), line)
			}
		}
		domains[res.Domain] = true
	}
	if failed > 0 {
		parts = append(parts, executors.Count(failed, "job failed", "jobs failed"))
	}
	if allowed > 0 {
		parts = append(parts, executors.Count(allowed, "allowed failure", "allowed failures"))
	}
	if skipped > 0 {
		parts = append(parts, executors.Count(skipped, "skipped", "skipped"))
	}
	if cancelled > 0 {
		parts = append(parts, executors.Count(cancelled, "cancelled", "cancelled"))
	}
	status := paint("\x1b[32m", "succeeded")
	switch {
	case res.Cancelled:
		status = paint("\x1b[33m", "interrupted")
	case res.Failed():
		var ds []string
		for _, d := range []actions.Domain{actions.DomainEnvironment, actions.DomainBuild, actions.DomainExecutor, actions.DomainStep} {
			if domains[d] {
				ds = append(ds, string(d))
			}
		}
		status = paint("\x1b[31m", "failed")
		if len(ds) > 0 {
			status += " (" + strings.Join(ds, ", ") + " failure)"
		}
	}
	line := fmt.Sprintf("\nrun %s %s in %s", res.RunID, status, timing.Human(res.Duration.Std()))
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	fmt.Fprintln(w, line)
	if res.Failed() || res.Cancelled {
		fmt.Fprintf(w, "logs: nixflow logs %s [JOB]\n", res.RunID)
	}
}

// mostAttempts is the most attempts any step of a job took: 1 for a job
// whose steps all passed at once, more when one was retried.
func mostAttempts(j *actions.JobResult) int {
	n := 0
	for _, s := range j.Steps {
		n = max(n, s.Attempts)
	}
	return n
}

// resultCells words each job's result for the summary table (under "", the
// header). On a terminal they are coloured: every cell padded to one width
// and wrapped in escapes of one length, so that the table stays aligned.
func resultCells(res *actions.Result, color bool) map[string]string {
	cells := map[string]string{"": "RESULT"}
	codes := map[string]string{"": "\x1b[01m"} // bold; all codes are 5 bytes
	width := len("RESULT")
	for _, j := range res.Jobs {
		result, code := string(j.Status), "\x1b[90m"
		switch {
		case j.Status == event.StatusSuccess:
			code = "\x1b[32m"
		case j.Status == event.StatusFailure && j.Allowed:
			result, code = "failed (allowed)", "\x1b[33m"
		case j.Status == event.StatusFailure && j.Domain != "":
			result, code = "failure ("+string(j.Domain)+")", "\x1b[31m"
		case j.Status == event.StatusFailure:
			code = "\x1b[31m"
		}
		cells[j.Job], codes[j.Job] = result, code
		width = max(width, len(result))
	}
	if color {
		for k, v := range cells {
			cells[k] = codes[k] + fmt.Sprintf("%-*s", width, v) + "\x1b[0m"
		}
	}
	return cells
}
