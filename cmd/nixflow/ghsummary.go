package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/timing"
)

// appendStepSummary appends a run's result to GitHub Actions' job summary
// file as Markdown: a table of jobs with their results and durations, then
// the last lines of each failed step.
func appendStepSummary(path string, res *actions.Result, masker *actions.Masker) error {
	var b strings.Builder
	verdict := "succeeded"
	switch {
	case res.Cancelled:
		verdict = "was interrupted"
	case res.Failed():
		verdict = "failed"
	}
	fmt.Fprintf(&b, "### nixflow: %s %s in %s\n\n", mdEscape(res.Name), verdict, timing.Human(res.Duration.Std()))
	b.WriteString("| Job | Result | Duration |\n| --- | --- | --- |\n")
	for _, j := range res.Jobs {
		icon, result := "✅", string(j.Status)
		switch {
		case j.Status == event.StatusFailure && j.Allowed:
			icon, result = "⚠️", "failed (allowed)"
		case j.Status == event.StatusFailure:
			icon = "❌"
		case j.Status == event.StatusSkipped:
			icon = "⏭️"
		case j.Status == event.StatusCancelled:
			icon = "🚫"
		}
		dur := "-"
		if j.Duration > 0 || len(j.Steps) > 0 {
			dur = timing.Human(j.Duration.Std())
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s |\n", mdEscape(j.Job), icon, result, dur)
	}
	for _, j := range res.Jobs {
		for _, s := range j.Steps {
			if s.Status != event.StatusFailure || len(s.Tail) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\n<details open><summary>%s › %s: last lines</summary>\n\n```text\n", mdEscape(j.Job), mdEscape(s.Step))
			for _, l := range s.Tail {
				b.WriteString(strings.ReplaceAll(masker.Mask(l), "```", "` ` `") + "\n")
			}
			b.WriteString("```\n\n</details>\n")
		}
	}
	b.WriteString("\n")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mdEscape keeps a name from breaking a Markdown table or summary.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}
