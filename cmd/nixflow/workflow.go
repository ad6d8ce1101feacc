package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nixflow/nixflow/compiler"
)

// workflowFlags are the flags that select and narrow a workflow, shared by
// run, plan, list and validate.
type workflowFlags struct {
	jobs []string
}

func (f *workflowFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.jobs, "job", nil, "run only this job and what it needs (repeatable)")
}

// loadPlan reads and compiles the workflow named by args (a .json file, or
// - for standard input) and narrows it to the selected jobs.
func (a *app) loadPlan(args []string, f *workflowFlags) (*compiler.Plan, error) {
	src := ""
	if len(args) > 0 {
		src = args[0]
	}
	name, data, err := a.readWorkflow(src)
	if err != nil {
		return nil, err
	}
	plan, err := compiler.Compile(name, data)
	if err != nil {
		var list compiler.ErrorList
		if errors.As(err, &list) {
			return nil, usageError(err)
		}
		return nil, err
	}
	if f != nil {
		plan, err = compiler.Select(plan, f.jobs)
		if err != nil {
			return nil, usageError(err, "'nixflow list' shows the jobs of the workflow")
		}
	}
	return plan, nil
}

func (a *app) readWorkflow(src string) (string, []byte, error) {
	switch {
	case src == "-":
		data, err := io.ReadAll(a.stdin)
		if err != nil {
			return "", nil, usageError(fmt.Errorf("read standard input: %w", err))
		}
		return "<stdin>", data, nil
	case src == "":
		return "", nil, usageError(errors.New("no workflow given"),
			"give a JSON job graph: nixflow run ci.json (or - to read it from standard input)")
	case strings.HasSuffix(src, ".json"):
		data, err := os.ReadFile(src)
		if err != nil {
			return "", nil, usageError(fmt.Errorf("read workflow: %w", err))
		}
		return filepath.Clean(src), data, nil
	default:
		return "", nil, usageError(fmt.Errorf("cannot read workflow %q: expected a .json job graph or - for standard input", src))
	}
}
