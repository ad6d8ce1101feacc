// Package testenv gates tests on outside tools (nix, docker, podman, sshd,
// sops). A test probes the tool for real; when it is missing the test is
// skipped, unless the tool is listed in NIXFLOW_TEST_REQUIRE (comma
// separated, as CI sets it): then a missing tool fails the test, so that no
// integration test skips silently in CI.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Required reports whether tool is listed in NIXFLOW_TEST_REQUIRE.
func Required(tool string) bool {
	for _, t := range strings.Split(os.Getenv("NIXFLOW_TEST_REQUIRE"), ",") {
		if strings.TrimSpace(t) == tool {
			return true
		}
	}
	return false
}

// Need skips or fails t when available is false, by NIXFLOW_TEST_REQUIRE.
func Need(t testing.TB, tool string, available bool, why string) {
	t.Helper()
	if available {
		return
	}
	if Required(tool) {
		t.Fatalf("%s is required (NIXFLOW_TEST_REQUIRE) but not available: %s", tool, why)
	}
	t.Skipf("%s not available: %s", tool, why)
}

// NeedCommand needs a binary on PATH.
func NeedCommand(t testing.TB, tool, binary string) string {
	t.Helper()
	path, err := exec.LookPath(binary)
	Need(t, tool, err == nil, binary+" not on PATH")
	return path
}

// NixBuild builds the Nix expression expr (nix-build -E, offline: no
// substituters) and returns its output path. It skips the test, or fails
// it when nix is required, if nix-build is missing.
func NixBuild(t *testing.T, expr string) string {
	t.Helper()
	NeedCommand(t, "nix", "nix-build")
	cmd := exec.Command("nix-build", "--no-out-link", "-E", expr)
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =\nexperimental-features = nix-command flakes")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-build: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// WaitForFile waits, up to 15 s, for file to exist (a step's sign that
// it started), and fails t if it does not.
func WaitForFile(t testing.TB, file string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(file); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", file)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
