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

// TestCheckBash: the step runner needs bash 4.4 or later; what the anchor
// reports of an older one, or something it cannot read, refuses the host
// with the version in the message.
func TestCheckBash(t *testing.T) {
	for version, want := range map[string]string{
		"4.4":  "",
		"5.2":  "",
		"10.0": "",
		"4.3":  "bash 4.3 is older than 4.4",
		"4.2":  "bash 4.2 is older than 4.4",
		"3.2":  "bash 3.2 is older than 4.4",
		"":     `cannot tell the version of bash ("")`,
		"5":    `cannot tell the version of bash ("5")`,
		"x.y":  `cannot tell the version of bash ("x.y")`,
	} {
		got := ""
		if err := checkBash(version); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("checkBash(%q) = %q, want %q", version, got, want)
		}
	}
}
