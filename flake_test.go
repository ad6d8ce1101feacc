package nixflow_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/internal/testenv"
)

// sourceTree copies the repository as git sees it (tracked files and
// untracked ones that are not ignored, uncommitted changes included) to a
// temporary directory, as Nix would take a committed flake.
func sourceTree(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		data, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue // deleted, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(f)
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// nixEval evaluates an attribute of the flake in root, with the stand-in
// nixpkgs of testdata/nixpkgs-stub (no nixpkgs can be fetched here), and
// returns what nix printed.
func nixEval(t *testing.T, root string, args ...string) string {
	t.Helper()
	stub, _ := filepath.Abs("testdata/nixpkgs-stub")
	full := append([]string{"--extra-experimental-features", "nix-command flakes"}, args...)
	full = append(full, "--override-input", "nixpkgs", "path:"+stub, "--no-write-lock-file")
	for i, a := range full {
		full[i] = strings.ReplaceAll(a, "@ROOT@", "path:"+root)
	}
	cmd := exec.Command("nix", full...)
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestFlake checks the outputs of flake.nix: the package, the library
// (given pkgs, so that workflows are runnable), the app, the checks (the
// nixlib one is built for real), the dev shell, the formatter and the
// template that `nixflow init` also writes.
func TestFlake(t *testing.T) {
	testenv.NeedCommand(t, "nix", "nix")
	testenv.NeedCommand(t, "nix", "git")
	root := sourceTree(t)
	sys := "x86_64-linux"
	for _, tt := range []struct{ attr, apply, want string }{
		{"packages." + sys + ".default.name", "", `"nixflow-0.1.0"`},
		{"packages." + sys + ".default.subPackages", "", `["cmd/nixflow"]`},
		{"lib." + sys + ".schemaVersion", "", `1`},
		{"lib." + sys, "l: builtins.attrNames l", `["actions","envProviders","executors","internal","mkExecutor","mkMatrixJobs","mkWorkflow","schemaVersion"]`},
		{"apps." + sys + ".default.type", "", `"app"`},
		{"checks." + sys, "c: builtins.attrNames c", `["go-tests","nixlib"]`},
		{"devShells." + sys + ".default.name", "", `"nix-shell"`},
		{"formatter." + sys + ".name", "", `"nixpkgs-fmt"`},
		{"templates.default.description", "", `"A ci.nix and a flake.nix whose CI runs with nixflow"`},
	} {
		args := []string{"eval", "--json", "@ROOT@#" + tt.attr}
		if tt.apply != "" {
			args = append(args, "--apply", tt.apply)
		}
		if got := nixEval(t, root, args...); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.attr, got, tt.want)
		}
	}
	// A workflow made with the flake's lib is a derivation (nix run .#ci).
	got := nixEval(t, root, "eval", "--json", "@ROOT@#lib."+sys,
		"--apply", `l: (l.mkWorkflow { name = "x"; jobs.a.steps = [ { bash = "true"; } ]; }).plan.jobs.a.steps`)
	if got != `[{"bash":"true"}]` {
		t.Errorf("lib.mkWorkflow plan = %s", got)
	}
	// The nixlib check compares the fixtures at evaluation time and builds.
	nixEval(t, root, "build", "--no-link", "@ROOT@#checks."+sys+".nixlib")
}

// TestFlakeVendorHash recomputes buildGoModule's vendorHash (the NAR hash
// of `go mod vendor`) and compares it with the one in flake.nix, so that a
// change of dependencies cannot leave the flake's package unbuildable.
func TestFlakeVendorHash(t *testing.T) {
	testenv.NeedCommand(t, "nix", "nix")
	flake, err := os.ReadFile("flake.nix")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`vendorHash = "(sha256-[^"]+)"`).FindSubmatch(flake)
	if m == nil {
		t.Fatal("no vendorHash in flake.nix")
	}
	testenv.NeedCommand(t, "nix", "git")
	root := sourceTree(t)
	vendor := filepath.Join(t.TempDir(), "vendor")
	cmd := exec.Command("go", "mod", "vendor", "-o", vendor)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	out, err := exec.Command("nix", "--extra-experimental-features", "nix-command", "hash", "path", vendor).Output()
	if err != nil {
		t.Fatalf("nix hash path: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != string(m[1]) {
		t.Errorf("flake.nix vendorHash is %s, go mod vendor hashes to %s: update flake.nix", m[1], got)
	}
}
