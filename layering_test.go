package nixflow_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/nixflow/nixflow"

// TestLayering enforces the import rules of the design (section 2), so that
// the layering cannot rot silently: dag and the executor contract import
// nothing of the project; the compiler knows no executor; executors know
// nothing of the graph; only the command wires backends in.
func TestLayering(t *testing.T) {
	rules := []struct {
		pkg     string
		allowed []string // project packages it may depend on, transitively
	}{
		{"dag", nil},
		{"executors", nil},
		{"timing", nil},
		// The bash the step runners share to look at processes.
		{"internal/procsh", nil},
		// A run's record: events, and the sinks that write them.
		{"event", []string{"timing"}},
		{"output", []string{"event", "timing"}},
		{"compiler", []string{"dag", "timing"}},
		// The bash backend works from the Plan alone: no engine, no executor.
		{"compiler/script", []string{"compiler", "dag", "timing", "internal/procsh"}},
		// What outlives a killed nixflow, each backend hands to a guard.
		{"executors/watchdog", nil},
		{"executors/local", []string{"executors", "executors/watchdog"}},
		{"executors/executortest", []string{"executors"}},
		{"executors/custom", []string{"executors", "executors/local", "executors/watchdog"}},
		// A backend reads its configuration type from the compiler
		// (executors.Params.Config); oci keeps its host directories with
		// the local executor's workspace.
		{"executors/oci", []string{"executors", "executors/local", "executors/watchdog", "compiler", "dag", "timing"}},
		{"executors/ec2", []string{"executors", "executors/ssh", "executors/watchdog", "compiler", "dag", "timing", "internal/procsh"}},
		{"actions", []string{"compiler", "dag", "executors", "event", "output", "timing"}},
		{"report", []string{"actions", "compiler", "dag", "executors", "event", "output", "timing"}},
	}
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", module+"/"+r.pkg).Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			allowed := map[string]bool{module + "/" + r.pkg: true}
			for _, a := range r.allowed {
				allowed[module+"/"+a] = true
			}
			for _, dep := range strings.Fields(string(out)) {
				if strings.HasPrefix(dep, module+"/") && !allowed[dep] {
					t.Errorf("%s must not depend on %s", r.pkg, strings.TrimPrefix(dep, module+"/"))
				}
			}
		})
	}
}
