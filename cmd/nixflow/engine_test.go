package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nixflow/nixflow/internal/testenv"
)

// scriptEngineSkips lists the CLI scripts that do not apply to the compiled
// script, and why. Every other run_*.txtar script runs on both engines.
var scriptEngineSkips = map[string]string{
	// nixflow run's own CLI: "did you mean" for commands and flags,
	// --log-level debug, the project column of nixflow runs.
	"run_cli_conventions": "nixflow run's own CLI conventions (the script has its own flags)",
	// Jobs on other executors: the script refuses them at compile time.
	"run_oci_timeout":     "oci jobs: the script runs local jobs only",
	"run_oci_interrupt":   "oci jobs: the script runs local jobs only",
	"run_oci_kill9":       "oci jobs: the script runs local jobs only",
	"run_ssh_timeout":     "ssh jobs: the script runs local jobs only",
	"run_ssh_interrupt":   "ssh jobs: the script runs local jobs only",
	"run_ssh_env":         "ssh jobs: the script runs local jobs only",
	"run_ssh_host_down":   "ssh jobs: the script runs local jobs only",
	"run_ssh_nix":         "ssh jobs: the script runs local jobs only",
	"run_interrupt_group": "oci and ssh jobs: the script runs local jobs only",
}

// TestScriptCompiled runs the run_*.txtar CLI scripts again, with every
// `nixflow run` replaced by `nixflow compile` and bash running the
// compiled script: one suite, two engines, so a divergence between the Go
// engine and the script fails a test.
func TestScriptCompiled(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	dir := t.TempDir()
	files, err := filepath.Glob("../../testdata/script/run_*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txtar")
		if why, ok := scriptEngineSkips[name]; ok {
			t.Logf("%s: not run on the script engine: %s", name, why)
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := scriptParams(dir)
	setup := p.Setup
	p.Setup = func(env *testscript.Env) error {
		env.Setenv("NIXFLOW_TEST_ENGINE", "script")
		return setup(env)
	}
	cond := p.Condition
	p.Condition = func(c string) (bool, error) {
		if c == "script" {
			return true, nil
		}
		return cond(c)
	}
	testscript.Run(t, p)
}

// splitRunArgs sorts the arguments of `nixflow run` into those of
// `nixflow compile` (--job) and those of the compiled script.
func splitRunArgs(args []string) (compileArgs, runArgs []string, workflow string, hasRepo bool) {
	valued := map[string]bool{"--job": true, "--max-parallel": true, "--schedule": true, "--env": true,
		"--env-file": true, "--log-format": true, "--events": true, "--interrupt-grace": true,
		"--terminate-grace": true, "--groups": true, "--artifacts-dir": true, "--repo": true,
		"--pass-env": true, "--log-level": true, "--junit": true}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, inline := strings.Cut(a, "=")
		switch {
		case !strings.HasPrefix(a, "-") || a == "-":
			workflow = a
		case name == "--job" || name == "-j":
			if inline {
				compileArgs = append(compileArgs, a)
			} else if i+1 < len(args) {
				compileArgs = append(compileArgs, a, args[i+1])
				i++
			}
		case valued[name] && !inline && i+1 < len(args):
			hasRepo = hasRepo || name == "--repo"
			runArgs = append(runArgs, a, args[i+1])
			i++
		default:
			hasRepo = hasRepo || name == "--repo"
			runArgs = append(runArgs, a)
		}
	}
	return compileArgs, runArgs, workflow, hasRepo
}

// runCompiled stands for `nixflow run ARGS` on the script engine: it
// compiles the workflow (with --job and the workflow argument), then
// replaces itself with bash running the script with the other flags, so
// that signals sent to "nixflow" reach the script.
func runCompiled(args []string) int {
	compileArgs, runArgs, workflow, hasRepo := splitRunArgs(args)
	out, err := os.CreateTemp("", "nixflow-compiled-*.sh")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	out.Close()
	compileArgs = append([]string{"compile", "-o", out.Name()}, compileArgs...)
	if workflow != "" {
		compileArgs = append(compileArgs, workflow)
	}
	if code := Main(compileArgs, os.Stdin, os.Stdout, os.Stderr); code != 0 {
		os.Remove(out.Name())
		return code
	}
	if !hasRepo {
		// As nixflow run does: jobs start from the workflow's project,
		// found upward when not given.
		if workflow == "" {
			workflow, _ = findWorkflow(os.Getenv("HOME"))
		}
		f := workflowFlags{source: workflow}
		runArgs = append(runArgs, "--repo", workTree(f.sourceDir()))
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	// The script file is removed by bash once read: a shell reads its
	// script as it goes, so the file goes only after the last line, which
	// the runtime reads before running anything.
	argv := append([]string{"bash", "-c", `f=$1; shift; exec 9<"$f"; rm -f "$f"; exec bash /dev/fd/9 "$@"`, "nixflow", out.Name()}, runArgs...)
	if err := syscall.Exec(bash, argv, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	return 3
}

// TestExamplesCompiled runs every example of examples/ as a compiled
// script, with the expectations of TestExamples: same outcomes, same exit
// status.
func TestExamplesCompiled(t *testing.T) {
	root := repoRoot(t)
	for _, tt := range exampleTests {
		if len(tt.tools) > 0 || tt.sshHosts > 0 {
			t.Logf("%s: not run on the script engine: its jobs run in containers or on ssh hosts, the script runs local jobs only", tt.name())
			continue
		}
		t.Run(tt.name(), func(t *testing.T) {
			if strings.HasSuffix(tt.file, ".nix") {
				testenv.NeedCommand(t, "nix", "nix-instantiate")
			}
			exampleEnv(t, root)
			compileArgs, runArgs, _, _ := splitRunArgs(tt.args)
			out := filepath.Join(t.TempDir(), "result")
			var errb bytes.Buffer
			args := append(append([]string{"compile", "-o", out}, compileArgs...), "examples/"+tt.file)
			if code := Main(args, bytes.NewReader(nil), &errb, &errb); code != 0 {
				t.Fatalf("compile: exit status %d:\n%s", code, errb.String())
			}
			cmd := exec.Command("bash", append([]string{out, "--log-format", "simple", "--repo", root}, runArgs...)...)
			output, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Fatalf("exit status %d, want %d; output:\n%s", code, tt.code, output)
			}
			for _, re := range tt.want {
				if !regexp.MustCompile(re).Match(output) {
					t.Errorf("output does not match %s:\n%s", re, output)
				}
			}
			for _, re := range tt.reject {
				if m := regexp.MustCompile(re).Find(output); m != nil {
					t.Errorf("output has %q (matching %s):\n%s", m, re, output)
				}
			}
			if tt.check != nil {
				tt.check(t, string(output))
			}
		})
	}
}
