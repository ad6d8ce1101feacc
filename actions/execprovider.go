package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
)

type compilerProvider = compiler.Provider

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// execProgram is the program of an exec provider: the path itself, or the
// first program (by name) in its bin/ directory, as nixactions runs a
// provider derivation.
func execProgram(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return p, nil
	}
	entries, err := os.ReadDir(filepath.Join(p, "bin"))
	if err != nil {
		return "", fmt.Errorf("a provider directory needs a bin/ with its program: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "", errors.New("the provider's bin/ is empty")
	}
	return filepath.Join(p, "bin", names[0]), nil
}

// runExec runs an exec provider's program in dir with environ and parses
// the `export KEY=VALUE` lines it prints.
func runExec(ctx context.Context, p compiler.Provider, dir string, environ []string) (map[string]string, error) {
	prog, err := execProgram(p.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist (not built?)", p.Path)
	}
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, prog)
	cmd.Env, cmd.Dir = environ, dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	executors.OwnGroupContext(cmd)
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.As(err, &exit):
		return nil, fmt.Errorf("exited with status %d%s", exit.ExitCode(), stderrHint(stderr.String()))
	case err != nil:
		return nil, err
	}
	return parseExports(stdout.Bytes())
}

// parseExports reads the `export KEY=VALUE` lines of a provider's output,
// values in shell quoting (printf %q: `x\ y`, 'x y', "x y", $'x\ny'),
// as shell words: nothing is executed or expanded, and a line with an
// expansion ($VAR, $(cmd)) is an error. Other lines (messages) are
// ignored, as nixactions does. Errors name the line, never its text: it
// may hold a secret.
func parseExports(out []byte) (map[string]string, error) {
	vals := map[string]string{}
	parser := syntax.NewParser(syntax.Variant(syntax.LangBash))
	for i, line := range strings.Split(string(out), "\n") {
		t := strings.TrimSpace(line)
		if !strings.HasPrefix(t, "export ") && !strings.HasPrefix(t, "export\t") {
			continue
		}
		f, err := parser.Parse(strings.NewReader(t), "")
		if err != nil || len(f.Stmts) != 1 {
			return nil, fmt.Errorf("line %d: not an export line in shell syntax", i+1)
		}
		decl, ok := f.Stmts[0].Cmd.(*syntax.DeclClause)
		if !ok || decl.Variant.Value != "export" || len(f.Stmts[0].Redirs) > 0 {
			return nil, fmt.Errorf("line %d: not a plain export line", i+1)
		}
		for _, a := range decl.Args {
			if a.Name == nil || a.Naked || a.Array != nil || a.Index != nil || a.Append {
				return nil, fmt.Errorf("line %d: expected KEY=VALUE after export", i+1)
			}
			v := ""
			if a.Value != nil {
				if !literalWord(a.Value) {
					return nil, fmt.Errorf("line %d: %s: the value holds an expansion ($, `), which nixflow does not run", i+1, a.Name.Value)
				}
				// Fields removes quotes and backslashes; a literal word is
				// one field, or none when it is empty ('').
				fields, err := expand.Fields(nil, a.Value)
				if err != nil || len(fields) > 1 {
					return nil, fmt.Errorf("line %d: %s: not one shell word", i+1, a.Name.Value)
				}
				if len(fields) == 1 {
					v = fields[0]
				}
			}
			vals[a.Name.Value] = v
		}
	}
	return vals, nil
}

// literalWord reports whether w is made of literals and quotes only.
func literalWord(w *syntax.Word) bool {
	ok := true
	syntax.Walk(w, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Word, *syntax.Lit, *syntax.SglQuoted:
		case *syntax.DblQuoted:
			if n.Dollar {
				ok = false
			}
		case nil:
		default:
			ok = false
		}
		return ok
	})
	return ok
}
