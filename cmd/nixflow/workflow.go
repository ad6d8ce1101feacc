package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/nixeval"
)

// workflowFlags are the flags that select and narrow a workflow, shared by
// run, plan, list and validate.
type workflowFlags struct {
	jobs []string
	// jobFlag: the command has --job (register).
	jobFlag bool
	// schemaOnly skips the check that this build has a backend for every
	// executor type (validate and plan only).
	schemaOnly bool
	// source is the workflow as given (set by loadPlan).
	source string
	// unselected are the jobs of the workflow that --job left out (set by
	// loadPlan), recorded with a run so that its logs can say so.
	unselected []string
}

// sourceDir is the directory a workflow comes from: a file's directory, a
// local flake's directory, else the current directory. A workflow in the
// Nix store (what `nix run .#ci` runs) belongs to no project there: it runs
// for the current directory.
func (f *workflowFlags) sourceDir() string {
	dir := f.rawSourceDir()
	if abs, err := filepath.Abs(dir); err == nil && inNixStore(abs) {
		return "."
	}
	return dir
}

// inNixStore reports whether path lies in the Nix store.
func inNixStore(path string) bool {
	store := os.Getenv("NIX_STORE_DIR")
	if store == "" {
		store = "/nix/store"
	}
	return path == store || strings.HasPrefix(path, store+"/")
}

func (f *workflowFlags) rawSourceDir() string {
	src := f.source
	if i := strings.Index(src, "#"); i >= 0 {
		src = src[:i]
		if src == "" || strings.Contains(src, ":") && !strings.HasPrefix(src, "path:") {
			return "." // the current flake, or a remote one
		}
		return strings.TrimPrefix(src, "path:")
	}
	if src == "" || src == "-" {
		return "."
	}
	return filepath.Dir(src)
}

func (f *workflowFlags) register(cmd *cobra.Command) {
	verb := "show"
	switch cmd.Name() {
	case "run":
		verb = "run"
	case "compile":
		verb = "compile"
	}
	f.jobFlag = true
	cmd.Flags().StringArrayVarP(&f.jobs, "job", "j", nil, verb+" only this job and the jobs it needs; a glob ('test-*') or a mkMatrixJobs name selects several (repeatable)")
	_ = cmd.RegisterFlagCompletionFunc("job", f.completeJobs)
}

// registerSchemaOnly adds --schema-only, for the commands that run nothing.
func (f *workflowFlags) registerSchemaOnly(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.schemaOnly, "schema-only", false,
		"check the workflow against the JSON graph schema only, also for executor types this build has no backend for")
}

// loadPlan reads the workflow named by args, evaluating it first when it
// is written in Nix, compiles it and narrows it to the selected jobs.
func (a *app) loadPlan(args []string, f *workflowFlags) (*compiler.Plan, error) {
	src := ""
	if len(args) > 0 {
		src = args[0]
	}
	if f != nil {
		f.source = src
	}
	name, data, generated, err := a.readWorkflow(src)
	if err != nil {
		// A job's name where the workflow goes (nixflow run build):
		// where the command has --job, say so.
		var ee *exitError
		if f != nil && f.jobFlag && errors.Is(err, errNotAWorkflow) && errors.As(err, &ee) {
			if hint := a.jobHint(src); hint != "" {
				ee.hints = append(ee.hints, hint)
			}
		}
		return nil, err
	}
	if f != nil && src == "" {
		f.source = name // found upward
	}
	compile := compiler.Compile
	if generated {
		compile = compiler.CompileGenerated
	}
	plan, err := compile(name, data)
	if err != nil {
		var list compiler.ErrorList
		if errors.As(err, &list) {
			if generated {
				a.placeErrors(name, list)
			}
			return nil, usageError(err)
		}
		return nil, err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", w)
	}
	if generated && strings.Contains(name, "#") {
		a.warnFlakeSecrets(name, plan)
	}
	if a.log != nil {
		if plan.LogLevel != "" && !a.logLevelSet {
			a.log.SetLevel(hclog.LevelFromString(plan.LogLevel))
		}
		a.log.Debug("workflow loaded", "source", name, "name", plan.Name, "jobs", len(plan.Jobs))
	}
	if f != nil {
		all := plan.Jobs
		plan, err = compiler.Select(plan, f.jobs)
		if err != nil {
			return nil, usageError(err, "'nixflow list' shows the jobs of the workflow")
		}
		f.unselected = nil
		if len(plan.Jobs) < len(all) {
			selected := make(map[string]bool, len(plan.Jobs))
			for _, j := range plan.Jobs {
				selected[j.Name] = true
			}
			for _, j := range all {
				if !selected[j.Name] {
					f.unselected = append(f.unselected, j.Name)
				}
			}
		}
	}
	// A selected job whose executor has no backend here fails now, not
	// after the jobs before it ran.
	if f != nil && f.schemaOnly {
		return plan, nil
	}
	if err := plan.CheckExecutors(registry().Types()); err != nil {
		var list compiler.ErrorList
		if generated && errors.As(err, &list) {
			for _, e := range list {
				e.Line, e.Col = 0, 0
			}
			a.placeErrors(name, list)
		}
		return nil, usageError(err)
	}
	return plan, nil
}

// warnFlakeSecrets warns about the files of secrets (file providers) that
// evaluating the local flake of src copied into the Nix store, where every
// user can read them: outside a git repository Nix copies the flake's
// whole directory, a dotenv file named by a string path in it included
// (in one, only the files git knows). The copy is made by then: the
// warning says how to stop making it.
func (a *app) warnFlakeSecrets(src string, plan *compiler.Plan) {
	dir := cmp.Or(flakeRefDir(src), ".")
	if strings.Contains(dir, ":") {
		return // a remote flake (github:o/r)
	}
	abs, err := filepath.Abs(dir)
	if err != nil || inNixStore(abs) || gitTop(abs) != "" {
		return
	}
	seen := map[string]bool{}
	check := func(where string, ps []compiler.Provider) {
		for i, p := range ps {
			if p.Type != "file" || !p.Secret() || p.Path == "" {
				continue
			}
			path := p.Path
			if !filepath.IsAbs(path) {
				path = filepath.Join(abs, path)
			}
			rel, err := filepath.Rel(abs, path)
			if err != nil || !filepath.IsLocal(rel) || seen[path] || !fileExists(path) {
				continue
			}
			seen[path] = true
			fmt.Fprintf(a.stderr, "warning: %senvFrom[%d] (file %q): this flake is not in a git repository, so Nix copied its whole directory, %s included, into the Nix store, where every user can read it: make the directory a git repository (Nix then copies only the files git knows; keep %s out of it with .gitignore), or keep %s outside the flake's directory\n",
				where, i, p.Path, rel, rel, rel)
		}
	}
	check("", plan.EnvFrom)
	for _, j := range plan.Jobs {
		check("jobs."+j.Name+".", j.EnvFrom)
	}
}

// readWorkflow returns the JSON job graph of a workflow: a .json file, -
// for standard input, a .nix file, or a flake output (".#ci"). With no
// argument it looks for ./ci.nix, then the ci output of ./flake.nix.
// generated reports whether the JSON was made by evaluating Nix.
func (a *app) readWorkflow(src string) (name string, data []byte, generated bool, err error) {
	if src == "" {
		var last string
		if src, last = findWorkflow(a.getenv("HOME")); src == "" {
			where := "here or above (up to the git repository's top)"
			if wd, err := os.Getwd(); err == nil && gitTop(wd) == "" {
				where = "here or above"
				if last != wd {
					where = "here or above, up to " + last
				}
				where += " (outside git the search stops below the home directory and /)"
			}
			return "", nil, false, usageError(errors.New("no workflow given, and no ci.nix or flake.nix "+where),
				"give one: nixflow run ci.nix, nixflow run .#ci, nixflow run graph.json (or - for standard input)",
				"or start one: nixflow init")
		}
		a.log.Debug("workflow found", "workflow", src)
	}
	switch {
	case src == "-":
		data, err := io.ReadAll(a.stdin)
		if err != nil {
			return "", nil, false, usageError(fmt.Errorf("read standard input: %w", err))
		}
		return "<stdin>", data, false, nil
	case strings.HasSuffix(src, ".json"):
		data, err := os.ReadFile(src)
		if err != nil {
			return "", nil, false, usageError(fmt.Errorf("read workflow: %w", err))
		}
		return filepath.Clean(src), data, false, nil
	case filepath.Base(src) == "flake.nix":
		return "", nil, false, usageError(fmt.Errorf("%s is a flake, not a workflow file", src),
			fmt.Sprintf("run its workflow output: nixflow run %s#ci", flakeDir(filepath.Dir(src))))
	case strings.HasSuffix(src, ".nix"):
		if fi, err := os.Stat(src); err != nil {
			return "", nil, false, usageError(fmt.Errorf("read workflow: %w", err))
		} else if fi.IsDir() {
			return "", nil, false, usageError(fmt.Errorf("read workflow: %s: is a directory", src))
		}
		data, err := a.evaluate(src, ".", func(ctx context.Context, opts nixeval.Options) ([]byte, error) {
			return nixeval.File(ctx, src, opts)
		})
		return src, data, true, err
	case strings.Contains(src, "#"):
		ref, err := localFlakeRef(src)
		if err != nil {
			return "", nil, false, err
		}
		data, err := a.evaluate(src, flakeRefDir(ref), func(ctx context.Context, opts nixeval.Options) ([]byte, error) {
			return nixeval.Flake(ctx, ref, opts)
		})
		return src, data, true, err
	default:
		return "", nil, false, usageError(fmt.Errorf("cannot read workflow %q: %w", src, errNotAWorkflow))
	}
}

// errNotAWorkflow is an argument that names no kind of workflow.
var errNotAWorkflow = errors.New("expected a .nix file, a flake output (.#ci), a .json job graph, or - for standard input")

// evalOptions are the options of every Nix evaluation nixflow runs.
func (a *app) evalOptions() (nixeval.Options, error) {
	cache, err := a.cacheDir()
	if err != nil {
		return nixeval.Options{}, err
	}
	return nixeval.Options{CacheDir: cache, Env: a.environ, ShowTrace: a.showTrace, Log: func(args []string) {
		if a.log != nil {
			// The expression nixflow passes is long and always the same.
			short := slices.Clone(args)
			for i, arg := range short {
				if first, _, multi := strings.Cut(arg, "\n"); multi {
					short[i] = first + "..."
				}
			}
			a.log.Debug("evaluate", "command", shellQuote(short))
		}
	}}, nil
}

// evaluate runs a Nix evaluation and sorts its failures: an evaluation
// error is the user's (exit 2), a missing Nix is the machine's (exit 3).
// src is the workflow as given, for its source map (nixSourceMap).
func (a *app) evaluate(src, flakeDir string, eval func(context.Context, nixeval.Options) ([]byte, error)) ([]byte, error) {
	opts, err := a.evalOptions()
	if err != nil {
		return nil, err
	}
	// A stop signal stops Nix (with SIGINT, as Ctrl-C in a terminal
	// would) and ends the command: nothing is left evaluating.
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	data, err := eval(ctx, opts)
	if ctx.Err() != nil {
		return nil, interruptedError("evaluating the workflow")
	}
	var evalErr *nixeval.EvalError
	var missing *nixeval.NixMissingError
	switch {
	case errors.As(err, &evalErr):
		if list := nixProblems(evalErr.Output, evalErr.Source, flakeDir, func() []problem { return a.conditionProblems(src) }); list != nil {
			return nil, usageError(list, "this is an evaluation error: nothing ran")
		}
		if p, ok := placedProblem(evalErr.Output, flakeDir); ok {
			return nil, usageError(errors.New(p.String()), "this is an evaluation error: nothing ran")
		}
		if p, ok := a.jobProblem(evalErr.Output, src); ok {
			return nil, usageError(errors.New(p.String()), "this is an evaluation error: nothing ran")
		}
		if strings.Contains(evalErr.Output, "/nix/store/") && strings.Contains(evalErr.Output, "No such file or directory") {
			return nil, usageError(err, "a flake in a git repository sees only the files git knows: git add them (git add ci.nix flake.nix)",
				"this is an evaluation error: nothing ran")
		}
		return nil, usageError(err, "this is an evaluation error: the workflow's Nix code failed, nothing ran")
	case errors.As(err, &missing):
		return nil, infraError(err, "install Nix (https://nixos.org/download), or give a .json job graph")
	case err != nil:
		return nil, infraError(err)
	}
	return data, nil
}

// localFlakeRef checks a flake reference whose part before '#' names a
// directory here, and makes "dir#ci" a path Nix takes as local: without
// "./" it would look dir up in the flake registry. A directory that is
// not here is refused: Nix would search up the tree from a missing path,
// and look a bare name up in the registry (which needs the network), and
// a typo would read as an evaluation error. An explicit registry or URL
// reference ("flake:nixpkgs", "github:o/r") has a ':' and is left to Nix;
// a query (".?submodules=1#ci") is Nix's too.
func localFlakeRef(ref string) (string, error) {
	dir, attr, _ := strings.Cut(ref, "#")
	path, _, _ := strings.Cut(dir, "?")
	if path == "" || strings.Contains(dir, ":") {
		return ref, nil
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err := fmt.Errorf("workflow %s: no directory %q here", ref, path)
		if strings.ContainsAny(path[:1], "./") || strings.Contains(path, "/") {
			return "", usageError(err)
		}
		return "", usageError(err, fmt.Sprintf("for a flake of the registry, write flake:%s", ref))
	case err != nil:
		return "", usageError(fmt.Errorf("workflow %s: %w", ref, err))
	case !fi.IsDir():
		return "", usageError(fmt.Errorf("workflow %s: %s is not a directory", ref, path),
			"the part before # names the directory of flake.nix")
	case strings.HasPrefix(dir, "/"), strings.HasPrefix(dir, "."):
		return ref, nil
	}
	return "./" + dir + "#" + attr, nil
}

// flakeDir writes a directory as the part of a flake reference before '#'.
func flakeDir(dir string) string {
	if dir == "." {
		return "."
	}
	if strings.HasPrefix(dir, "/") || strings.HasPrefix(dir, ".") {
		return dir
	}
	return "./" + dir
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
