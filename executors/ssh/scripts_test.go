package ssh

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/internal/testenv"
)

// TestScriptsShellcheck checks the scripts nixflow runs on hosts with
// shellcheck.
func TestScriptsShellcheck(t *testing.T) {
	testenv.NeedCommand(t, "shellcheck", "shellcheck")
	for name, script := range map[string]string{"anchor.sh": anchorScript, "step.sh": stepScript} {
		cmd := exec.Command("shellcheck", "-s", "bash", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", name, err, out)
		}
	}
	for name, script := range map[string]string{"untar": untarScript, "tar out": tarOutScript, "remove": removeScript} {
		cmd := exec.Command("shellcheck", "-s", "bash", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", name, err, out)
		}
	}
}
