package ssh

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/internal/testenv"
)

// TestScriptsShellcheck checks the scripts nixflow runs on hosts with
// shellcheck.
func TestScriptsShellcheck(t *testing.T) {
	testenv.NeedCommand(t, "shellcheck", "shellcheck")
	for name, script := range map[string]string{
		"anchor.sh": anchorScript, "step.sh": stepScript,
		"untar": untarScript, "tree check": treeCheckScript, "tar out": tarOutScript, "remove": removeScript,
	} {
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

// TestDialErrorHints: what ssh or the login shell printed, when the
// master connection failed, gives the error and the hint.
func TestDialErrorHints(t *testing.T) {
	h := &host{t: Target{Host: "build1", User: "ci"}}
	for _, tc := range []struct {
		lines             []string
		stderr, err, hint string
	}{
		{nil, "ci@bash-ci.example.com: Permission denied (publickey).", "ci@bash-ci.example.com: Permission denied (publickey).", "the host refused every key"},
		{nil, "ci@build1: Permission denied (publickey).", "ci@build1: Permission denied (publickey).", "the host refused every key"},
		{nil, "dash: 1: exec: bash: Permission denied", "bash cannot be run: dash: 1: exec: bash: Permission denied", "check its permissions"},
		{nil, "sh: 1: exec: bash: not found", "bash is not installed", "install it on the host"},
		{nil, "ssh: connect to host build1 port 22: Connection refused", "ssh: connect to host build1 port 22: Connection refused", "check the host name"},
		{[]string{"welcome", "This account is currently not available."}, "",
			"the connection ended before the host answered; the login printed: This account is currently not available.", "not nologin"},
	} {
		var d *downError
		if !errors.As(h.dialError(tc.lines, tc.stderr), &d) {
			t.Fatalf("%q: not a downError", tc.stderr)
		}
		if d.err.Error() != tc.err || !strings.Contains(d.hint, tc.hint) {
			t.Errorf("%q: error %q, hint %q; want %q and a hint with %q", tc.stderr, d.err, d.hint, tc.err, tc.hint)
		}
	}
}
