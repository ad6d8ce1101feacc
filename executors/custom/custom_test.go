package custom_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/custom"
	"github.com/nixflow/nixflow/executors/executortest"
)

// dirHooks is a custom executor written as a user would, in shell: the
// steps run on this machine under the workdir, with plain cp and rm. It
// stands for any system driven by its own command-line tool.
var dirHooks = custom.Hooks{
	SetupWorkspace: `mkdir -p "$NIXFLOW_RUN_DIR/custom-log"; echo "setupWorkspace $NIXFLOW_EXECUTOR" >> "$NIXFLOW_RUN_DIR/custom-log/hooks"`,
	SetupJob: `echo "creating $NIXFLOW_JOB"
mkdir -p "$NIXFLOW_WORKSPACE" "$(dirname "$NIXFLOW_TEMP_DIR")"
mkdir -m 700 "$NIXFLOW_TEMP_DIR"`,
	ExecuteJob: `. "$NIXFLOW_STEP_ENV_FILE"
cd "$NIXFLOW_STEP_DIR"
exec "$@"`,
	SaveArtifact: `[ -e "$1" ] || exit "$NIXFLOW_NOT_FOUND_EXIT_CODE"
mkdir -p "$(dirname "$2")"
if [ -d "$1" ]; then
  mkdir -p "$2"
  cp -a "$1/." "$2/"
else
  rm -f "$2"
  cp -aL "$1" "$2"
fi`,
	RestoreArtifact: `mkdir -p "$(dirname "$2")"
if [ -d "$1" ]; then
  mkdir -p "$2"
  cp -a "$1/." "$2/"
else
  rm -f "$2"
  cp -aL "$1" "$2"
fi`,
	CleanupJob: `rm -rf "$NIXFLOW_TEMP_DIR"
if [ "${NIXFLOW_KEEP:-0}" != 1 ]; then
  chmod -R u+rwx "$NIXFLOW_WORKSPACE" 2>/dev/null || true
  rm -rf "$NIXFLOW_WORKSPACE"
fi`,
	CleanupWorkspace: `echo "cleanupWorkspace $NIXFLOW_EXECUTOR" >> "$NIXFLOW_RUN_DIR/custom-log/hooks"`,
}

func newExecutor(t *testing.T, hooks custom.Hooks, runDir string) executors.Executor {
	t.Helper()
	ex, err := custom.New(executors.Params{
		Config: &custom.Config{Hooks: hooks}, Name: "dirs",
		RunID: "conformance", RunDir: runDir, Environ: os.Environ(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Closing again is harmless: this releases what the hooks' local
	// executor keeps for the run (the cgroups of its steps) also in tests
	// that do not close their executor.
	t.Cleanup(func() { ex.Close(context.Background()) })
	return ex
}

func TestConformance(t *testing.T) {
	executortest.Run(t, executortest.Backend{
		New:             func(t *testing.T) executors.Executor { return newExecutor(t, dirHooks, t.TempDir()) },
		InheritsHostEnv: true,
		ByHooks:         true,
		ReadKept: func(t *testing.T, ws executors.Workspace, rel string) ([]byte, error) {
			return os.ReadFile(filepath.Join(ws.Dir(), filepath.FromSlash(rel)))
		},
	})
}

// TestHookLifecycle checks the order hooks run in and what they are given.
func TestHookLifecycle(t *testing.T) {
	runDir := t.TempDir()
	ex := newExecutor(t, dirHooks, runDir)
	ctx := context.Background()
	var progress []string
	for _, job := range []string{"a", "b"} {
		ws, err := ex.Prepare(ctx, executors.JobSpec{RunID: "conformance", Job: job, RunDir: runDir, Log: func(m string) { progress = append(progress, m) }})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ws.Where(), "custom executor dirs"; got != want {
			t.Errorf("Where = %q, want %q", got, want)
		}
		if err := ws.Teardown(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := ex.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(runDir, "custom-log", "hooks"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "setupWorkspace dirs\ncleanupWorkspace dirs\n"; got != want {
		t.Errorf("executor-level hooks ran as %q, want %q", got, want)
	}
	if got, want := strings.Join(progress, "|"), "creating a|creating b"; got != want {
		t.Errorf("setupJob output as progress: %q, want %q", got, want)
	}
	if left, err := os.ReadDir(filepath.Join(runDir, "custom")); err != nil || len(left) != 0 {
		t.Errorf("left behind in the run directory: %v, %v", left, err)
	}
}

// TestSameName checks that two executors of one name (here with the same
// hooks, as with and without copyRepo) do not share directories.
func TestSameName(t *testing.T) {
	runDir := t.TempDir()
	ctx := context.Background()
	var dirs []string
	for range 2 {
		ex := newExecutor(t, dirHooks, runDir)
		ws, err := ex.Prepare(ctx, executors.JobSpec{RunID: "r", Job: "j", RunDir: runDir})
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, ws.Dir())
		t.Cleanup(func() {
			ws.Teardown(ctx, false)
			ex.Close(ctx)
		})
	}
	if dirs[0] == dirs[1] {
		t.Errorf("both executors use %q", dirs[0])
	}
}

// TestHookFailures checks how hook exit statuses are reported.
func TestHookFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("setupJob", func(t *testing.T) {
		h := dirHooks
		h.SetupJob = `echo "no cluster here" >&2; exit 4`
		runDir := t.TempDir()
		_, err := newExecutor(t, h, runDir).Prepare(ctx, executors.JobSpec{RunID: "r", Job: "j", RunDir: runDir})
		var he *custom.HookError
		if !errors.As(err, &he) || he.Hook != "setupJob" || he.ExitCode != 4 || he.Stderr != "no cluster here" {
			t.Fatalf("Prepare: %v, want a HookError of setupJob with status 4 and its stderr", err)
		}
		if got, want := err.Error(), "custom executor \"dirs\": hook setupJob exited with status 4:\nno cluster here"; got != want {
			t.Errorf("error = %q, want %q", got, want)
		}
	})
	t.Run("executeJobSystemFailure", func(t *testing.T) {
		h := dirHooks
		h.ExecuteJob = `if [ "$1" = fail ]; then exit 5; fi; exit "$NIXFLOW_SYSTEM_FAILURE_EXIT_CODE"`
		runDir := t.TempDir()
		ex := newExecutor(t, h, runDir)
		ws, err := ex.Prepare(ctx, executors.JobSpec{RunID: "r", Job: "j", RunDir: runDir})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Teardown(ctx, false)
		if res, err := ws.Run(ctx, executors.Command{Argv: []string{"fail"}}); err != nil || res.ExitCode != 5 {
			t.Errorf("a failing step: %+v, %v; want exit status 5 and no error", res, err)
		}
		_, err = ws.Run(ctx, executors.Command{Argv: []string{"other"}})
		if got, want := err.Error(), `custom executor "dirs": hook executeJob reported a system failure`; got != want {
			t.Errorf("system failure: %q, want %q", got, want)
		}
	})
}
