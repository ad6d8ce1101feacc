// Package nixeval turns a workflow written in Nix into the JSON job graph
// the compiler reads: a .nix file, evaluated with nix-instantiate and the
// embedded nixflow library passed in, or a flake output, evaluated with
// nix eval. It also realises the derivations steps depend on.
package nixeval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/nixlib"
)

// EvalError is a workflow whose Nix code failed to evaluate. Its message
// is Nix's own, which names the file and position.
type EvalError struct {
	// Source is the workflow as the user named it.
	Source string
	// Output is what Nix printed on stderr.
	Output string
}

// Headline is the one-line summary of the error.
func (e *EvalError) Headline() string { return fmt.Sprintf("evaluation error in %s:", e.Source) }

// Details is what Nix said.
func (e *EvalError) Details() string { return e.Output }

func (e *EvalError) Error() string {
	return fmt.Sprintf("evaluation error in %s:\n%s", e.Source, strings.TrimRight(e.Output, "\n"))
}

// NixMissingError reports that the nix tools are not installed.
type NixMissingError struct{ Tool string }

func (e *NixMissingError) Error() string {
	return fmt.Sprintf("%s is not on PATH: evaluating Nix workflows needs Nix", e.Tool)
}

// evalExpr evaluates a workflow file: a function taking any of
// { nixflow, pkgs, nixactions } (given only what it asks for, so that a
// function without `...` works), or a plain value; a mkWorkflow result
// gives its .plan, anything else is taken as the graph itself.
//
// pkgs is <nixpkgs> when the search path has it. A function that gives
// pkgs a default (a pinned nixpkgs) keeps it; one that needs pkgs when
// there is none gets a value that says so when used (a workflow that
// takes pkgs but never uses it still runs). A default of null
// (`pkgs ? null`, as in nixflow init's template, so that the file also
// works without nixpkgs) means "<nixpkgs> if there is one": such a
// function gets <nixpkgs> when the search path has it, else its null
// (so `if pkgs != null` works), and an evaluation that then fails on the
// null says that <nixpkgs> is missing (nullPkgs).
var evalExpr = `{ file, lib, nullPkgs ? false, sourceMap ? false }:
let
` + noStoreExpr + `
  found = builtins.tryEval (builtins.findFile builtins.nixPath "nixpkgs");
  pkgs = if found.success then import found.value { } else null;
  noPkgs = throw ("nixflow: " + file + " uses pkgs, but <nixpkgs> is not on the Nix search path: "
    + "give pkgs a default ({ pkgs ? import ./nixpkgs.nix { }, ... }), set NIX_PATH, or run the flake's workflow (.#ci)");
  nixflow = import lib { inherit pkgs; };
  raw = import file;
  formals = builtins.functionArgs raw;
  # nixactions' prebuilt jobs (nixactions.jobs.buildahBuildPush) have no
  # counterpart: say so where one is used, not "attribute missing".
  nixactions = nixflow // {
    jobs = throw "nixflow: nixactions.jobs: nixactions' prebuilt jobs (buildahBuildPush, ...) are not part of nixflow: write the job's steps, e.g. { steps = [ { bash = \"buildah bud -t app .\"; } ]; } (docs/nix-api.md, porting)";
  };
  args = { inherit nixflow nixactions; }
    // (if nullPkgs then (if pkgs == null then { } else { inherit pkgs; })
        else if formals.pkgs or false then { }
        else { pkgs = if pkgs == null then noPkgs else pkgs; });
  # An argument without a default that nixflow does not give: said so,
  # rather than Nix's word about a call in this wrapper.
  unknown = builtins.filter (k: !formals.${k} && !(args ? ${k})) (builtins.attrNames formals);
  value = if builtins.isFunction raw && unknown != [ ]
    then throw ("nixflow: " + toString file + " takes the argument " + builtins.toJSON (builtins.head unknown)
      + ", which nixflow does not give (it gives nixflow, pkgs and nixactions): give it a default ({ "
      + builtins.head unknown + " ? ..., ... }), or import the file from a ci.nix that passes it")
    else if builtins.isFunction raw
    then raw (builtins.intersectAttrs formals args)
    else raw;
in
  if sourceMap then (if builtins.isAttrs value && value ? sourceMap then value.sourceMap else { })
  else noStore (if builtins.isAttrs value && value ? plan then value.plan else value)
`

// noStoreExpr defines noStore, which turns the Nix paths a graph gives
// providers (file's path, sops' file; the workflow's or a job's
// envFrom) into strings without copying them into the store: written
// out as JSON, a path is copied there first, world-readable, and a
// dotenv file of secrets with it. mkWorkflow does this itself; noStore
// covers graphs written by hand, whatever their form.
const noStoreExpr = `
  noStore = let
    str = v: if builtins.typeOf v == "path" then toString v else v;
    provider = p: if builtins.isAttrs p
      then p // builtins.mapAttrs (_: str) (builtins.intersectAttrs { path = null; file = null; } p)
      else p;
    providers = l: if builtins.isList l then map provider l else l;
    withEnvFrom = a: if builtins.isAttrs a && a ? envFrom then a // { envFrom = providers a.envFrom; } else a;
  in g:
    if !(builtins.isAttrs g) then g
    else withEnvFrom g // (if g ? jobs && builtins.isAttrs g.jobs
      then { jobs = builtins.mapAttrs (_: withEnvFrom) g.jobs; } else { });
`

// pkgsDefaultsToNull finds `pkgs ? null` among a function's formals.
var pkgsDefaultsToNull = regexp.MustCompile(`[{,]\s*pkgs\s*\?\s*null\s*[,}]`)

// Options configure evaluation.
type Options struct {
	// CacheDir is where the embedded library is written for Nix to import.
	CacheDir string
	// Env is the environment of the nix commands (nil: nixflow's own).
	Env []string
	// Log, if set, is told each nix command before it runs.
	Log func(args []string)
	// ShowTrace asks Nix for the whole trace of an evaluation error.
	ShowTrace bool
}

// File evaluates a .nix workflow file and returns its JSON job graph.
// Evaluation writes the .drv files of the steps' deps to the store, so
// that they can be realised later.
func File(ctx context.Context, path string, opts Options) ([]byte, error) {
	return file(ctx, path, opts, false)
}

// SourceMap is where the fields of a workflow written with mkWorkflow are
// in its Nix files, and the text of its conditions: what the CLI needs
// to put the compiler's errors about the generated JSON at their place.
type SourceMap struct {
	// Positions maps a JSON path ("jobs.a.steps[0].condition") to
	// "FILE:LINE:COL".
	Positions map[string]string `json:"positions"`
	// Conditions maps the JSON path of each condition to its text.
	Conditions map[string]string `json:"conditions"`
}

// FileSourceMap evaluates the source map of a .nix workflow file. It
// never fails on a workflow's mistakes, only when its Nix code does not
// evaluate; a workflow not made with mkWorkflow has an empty one.
func FileSourceMap(ctx context.Context, path string, opts Options) (*SourceMap, error) {
	data, err := file(ctx, path, opts, true)
	if err != nil {
		return nil, err
	}
	return decodeSourceMap(data)
}

// FlakeSourceMap is FileSourceMap for a flake output.
func FlakeSourceMap(ctx context.Context, ref string, opts Options) (*SourceMap, error) {
	bin, err := exec.LookPath("nix")
	if err != nil {
		return nil, &NixMissingError{Tool: "nix"}
	}
	cmd := exec.CommandContext(ctx, bin, "--extra-experimental-features", "nix-command flakes",
		"eval", "--json", ref, "--apply", "v: if builtins.isAttrs v && v ? sourceMap then v.sourceMap else { }")
	if opts.Log != nil {
		opts.Log(cmd.Args)
	}
	data, err := run(cmd, ref, opts.Env)
	if err != nil {
		return nil, err
	}
	return decodeSourceMap(data)
}

func decodeSourceMap(data []byte) (*SourceMap, error) {
	var m SourceMap
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("read the source map: %w", err)
	}
	return &m, nil
}

func file(ctx context.Context, path string, opts Options, sourceMap bool) ([]byte, error) {
	bin, err := exec.LookPath("nix-instantiate")
	if err != nil {
		return nil, &NixMissingError{Tool: "nix-instantiate"}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	cache, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	lib, err := nixlib.Materialize(cache)
	if err != nil {
		return nil, fmt.Errorf("write the nixflow library to %s: %w", cache, err)
	}
	nullPkgs := "false"
	if src, err := os.ReadFile(abs); err == nil && pkgsDefaultsToNull.Match(src) {
		nullPkgs = "true"
	}
	cmd := exec.CommandContext(ctx, bin, "--eval", "--strict", "--json", "--read-write-mode",
		"--argstr", "file", abs, "--argstr", "lib", lib, "--arg", "nullPkgs", nullPkgs,
		"--arg", "sourceMap", strconv.FormatBool(sourceMap), "-E", evalExpr)
	if opts.ShowTrace {
		cmd.Args = append(cmd.Args, "--show-trace")
	}
	if opts.Log != nil {
		opts.Log(cmd.Args)
	}
	out, err := run(cmd, path, opts.Env)
	var ee *EvalError
	if nullPkgs == "true" && errors.As(err, &ee) &&
		(strings.Contains(ee.Output, "null while a set was expected") || strings.Contains(ee.Output, "expected a set but found null")) {
		// Nix's words name no culprit: the workflow used its null pkgs.
		ee.Output = "error: nixflow: " + abs + " uses pkgs, but <nixpkgs> is not on the Nix search path: " +
			"give pkgs a default ({ pkgs ? import ./nixpkgs.nix { }, ... }), set NIX_PATH, or run the flake's workflow (.#ci)\n"
	}
	return out, err
}

// Flake evaluates a flake output (".#ci", "path/to/flake#ci") and returns
// its JSON job graph: the output's .plan when it has one (a mkWorkflow
// result, or the derivation made from it), else the output itself.
func Flake(ctx context.Context, ref string, opts Options) ([]byte, error) {
	bin, err := exec.LookPath("nix")
	if err != nil {
		return nil, &NixMissingError{Tool: "nix"}
	}
	cmd := exec.CommandContext(ctx, bin, "--extra-experimental-features", "nix-command flakes",
		"eval", "--json", ref, "--apply", "v: let "+noStoreExpr+" in noStore (if builtins.isAttrs v && v ? plan then v.plan else v)")
	if opts.ShowTrace {
		cmd.Args = append(cmd.Args, "--show-trace")
	}
	if opts.Log != nil {
		opts.Log(cmd.Args)
	}
	return run(cmd, ref, opts.Env)
}

func run(cmd *exec.Cmd, source string, env []string) ([]byte, error) {
	cmd.Env = env
	interruptOnCancel(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, &EvalError{Source: source, Output: stderr.String()}
		}
		return nil, fmt.Errorf("run %s: %w", filepath.Base(cmd.Path), err)
	}
	return stdout.Bytes(), nil
}

// interruptOnCancel makes a Nix command made with exec.CommandContext
// stop as from Ctrl-C in a terminal when its context ends: SIGINT, not
// SIGKILL, so that Nix stops its builders (a build, or an import from
// derivation during an evaluation) itself. SIGKILL comes only if it is
// still there 10 s later.
func interruptOnCancel(cmd *exec.Cmd) {
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
}

// BuildError is a derivation that failed to build.
type BuildError struct {
	Drvs   []string
	Output string
}

func (e *BuildError) Error() string {
	msg := fmt.Sprintf("build of %s failed", strings.Join(e.Drvs, ", "))
	// Nix's own verdict is its last error line; the whole log was shown
	// as it came.
	lines := strings.Split(strings.TrimSpace(e.Output), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "error:") {
			return msg + ": " + strings.TrimSpace(strings.TrimPrefix(l, "error:"))
		}
	}
	return msg
}

// Realise builds derivations (nix-store --realise) and returns when their
// outputs exist. Build logs go to log as they come. With root set, the
// outputs are registered as garbage collector roots under that path (one
// symlink each), so that a garbage collection cannot delete them before
// the steps that need them have run; removing the symlinks releases them.
func Realise(ctx context.Context, drvs []string, root string, env []string, log func(line string)) error {
	bin, err := exec.LookPath("nix-store")
	if err != nil {
		return &NixMissingError{Tool: "nix-store"}
	}
	args := []string{"--realise"}
	if root != "" {
		if err := os.MkdirAll(filepath.Dir(root), 0o700); err != nil {
			return err
		}
		args = append(args, "--add-root", root, "--indirect")
	}
	cmd := exec.CommandContext(ctx, bin, append(args, drvs...)...)
	// A build runs while jobs run: in a session of its own, Nix hears of
	// a Ctrl-C from nixflow only (the terminal's signal to the whole
	// foreground group would stop a build that a cleanup job still
	// needs), and then as a terminal would say it, to its whole group
	// (as interruptOnCancel, SIGKILL 10 s later).
	executors.OwnGroupContext(cmd)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stdout = nil
	cmd.Stderr = &lineSplitter{buf: &stderr, log: log}
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return &BuildError{Drvs: drvs, Output: stderr.String()}
		}
		return fmt.Errorf("run nix-store: %w", err)
	}
	return nil
}

// lineSplitter keeps a copy of what it is written and hands complete lines
// to log.
type lineSplitter struct {
	buf     *bytes.Buffer
	partial []byte
	log     func(string)
}

func (l *lineSplitter) Write(p []byte) (int, error) {
	l.buf.Write(p)
	if l.log == nil {
		return len(p), nil
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.log(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
}
