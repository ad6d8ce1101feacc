package nixlib

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/nixflow/nixflow/internal/testenv"
)

// TestLibrary runs the Nix library's own test suite (tests/run.sh) with
// real Nix: every fixture is evaluated and compared with its expected
// JSON, then validated and planned by a nixflow binary built from this
// tree; every expected failure must fail with its message; a workflow is
// built into its runner and run end to end.
func TestLibrary(t *testing.T) {
	for _, bin := range []string{"nix", "nix-instantiate", "nix-build"} {
		testenv.NeedCommand(t, "nix", bin)
	}
	testenv.NeedCommand(t, "nix", "jq")
	dir := t.TempDir()
	nixflow := filepath.Join(dir, "nixflow")
	build := exec.Command("go", "build", "-o", nixflow, "../cmd/nixflow")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build nixflow: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", "tests/run.sh")
	cmd.Env = append(os.Environ(),
		"NIXFLOW="+nixflow,
		"NIX_CONFIG=substituters =\nexperimental-features = nix-command flakes",
		"XDG_STATE_HOME="+filepath.Join(dir, "state"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
	)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("tests/run.sh: %v", err)
	}
	if !regexp.MustCompile(`(?m)^\d+ passed, 0 failed, 0 skipped$`).Match(out) {
		t.Fatalf("tests/run.sh did not report every check run and passed")
	}
}
