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
	// The flake's lib makes workflows (TestFlakeTemplateCI builds and runs one).
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

// TestFlakeTemplateCI builds and runs the `ci` outputs of the flake that
// `nixflow init` writes (templates/default), against this tree's flake and
// a stand-in nixpkgs whose nixflow package is a binary built from this
// tree: `nix build .#ci` gives ONE executable file, the compiled script,
// which runs the pipeline (so `ssh host < result` works), and `nix run
// .#ci` still runs it with nixflow (apps.ci).
func TestFlakeTemplateCI(t *testing.T) {
	testenv.NeedCommand(t, "nix", "nix")
	testenv.NeedCommand(t, "nix", "git")
	root := sourceTree(t)
	// Nix's build users must read the binary: world-readable directories.
	tmp, err := os.MkdirTemp("", "nixflow-flake-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	stub, proj, work := filepath.Join(tmp, "nixpkgs"), filepath.Join(tmp, "proj"), filepath.Join(tmp, "work")
	for _, d := range []string{tmp, stub, proj, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(stub, "nixflow-bin"), "./cmd/nixflow")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	copyFile := func(src, dst string) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("testdata/nixpkgs-stub/flake.nix", filepath.Join(stub, "flake.nix"))
	copyFile("templates/default/flake.nix", filepath.Join(proj, "flake.nix"))
	copyFile("templates/default/ci.nix", filepath.Join(proj, "ci.nix"))
	nix := func(args ...string) string {
		t.Helper()
		// The flags before the args: `nix run` passes what follows `--` on.
		full := append([]string{"--extra-experimental-features", "nix-command flakes", args[0],
			"--override-input", "nixpkgs", "path:" + stub,
			"--override-input", "nixflow", "path:" + root, "--no-write-lock-file"}, args[1:]...)
		cmd := exec.Command("nix", full...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =", "XDG_STATE_HOME="+filepath.Join(tmp, "state"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nix %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	wantLines := []string{"[test/unit] run your tests here\n", "[build/compile] built\n", "[report/summary] pipeline finished\n"}

	result := filepath.Join(tmp, "result")
	nix("build", "path:"+proj+"#ci", "-o", result)
	fi, err := os.Stat(result)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("nix build .#ci gave %v, want one executable file", fi.Mode())
	}
	// As `ssh host < result` runs it: bash reading the script on stdin.
	script, err := os.Open(result)
	if err != nil {
		t.Fatal(err)
	}
	defer script.Close()
	run := exec.Command("bash", "-s", "--", "--log-format", "simple", "--run-dir", filepath.Join(tmp, "run"))
	run.Dir = work
	run.Stdin = script
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("bash -s < result: %v\n%s", err, out)
	}
	for _, want := range wantLines {
		if !strings.Contains(string(out), want) {
			t.Errorf("bash -s < result: output lacks %q:\n%s", want, out)
		}
	}

	got := nix("run", "path:"+proj+"#ci", "--", "--log-format", "simple")
	for _, want := range wantLines {
		if !strings.Contains(got, want) {
			t.Errorf("nix run .#ci: output lacks %q:\n%s", want, got)
		}
	}
}
