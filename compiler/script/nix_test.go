package script_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/internal/testenv"
)

// TestNixScriptDerivation builds a workflow's .script with the Nix library,
// a stand-in pkgs (runCommand and writeText, as nixpkgs has them) and the
// nixflow binary of this tree: `nix-build` gives ONE executable file, the
// compiled script, which runs.
func TestNixScriptDerivation(t *testing.T) {
	nixBuild := testenv.NeedCommand(t, "nix", "nix-build")
	// Nix's build users must read the binary: a world-readable directory.
	dir, err := os.MkdirTemp("", "nixflow-nix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin", "nixflow")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nixflow/nixflow/cmd/nixflow").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	nixlib, err := filepath.Abs("../../nixlib")
	if err != nil {
		t.Fatal(err)
	}
	expr := `
let
  system = builtins.currentSystem;
  runCommand = name: env: script: builtins.derivation (env // {
    inherit name system; builder = "/bin/sh"; args = [ "-c" script ]; PATH = "/usr/bin:/bin";
  });
  pkgs = {
    inherit runCommand;
    writeText = name: text: runCommand name { inherit text; passAsFile = [ "text" ]; } "cp $textPath $out";
    writeShellScriptBin = name: text: runCommand name { } "exit 1";
  };
  # The nixflow package: this tree's binary, reachable since the sandbox is off.
  nixflow = runCommand "nixflow" { } "mkdir -p $out/bin && cp ` + bin + ` $out/bin/nixflow";
  lib = import ` + nixlib + ` { inherit pkgs nixflow; };
in
(lib.mkWorkflow {
  name = "ci";
  jobs.build = { executor = lib.executors.local { copyRepo = false; }; steps = [ { name = "s"; bash = "echo built by nix"; } ]; };
  jobs.test = { needs = [ "build" ]; executor = lib.executors.local { copyRepo = false; }; steps = [ { name = "s"; bash = "echo tested"; } ]; };
}).script
`
	f := filepath.Join(dir, "script.nix")
	if err := os.WriteFile(f, []byte(expr), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "result")
	cmd := exec.Command(nixBuild, f, "-o", link)
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nix-build: %v\n%s", err, out)
	}
	fi, err := os.Stat(link)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("result is %v, want one executable file", fi.Mode())
	}
	run := exec.Command(link, "--log-format", "simple", "--run-dir", filepath.Join(dir, "run"))
	run.Dir = dir
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("running the script: %v\n%s", err, out)
	}
	for _, want := range []string{"[build/s] built by nix\n", "[test/s] tested\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
