package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/nixeval"
)

// problemLine is one problem the Nix library collected: FILE:LINE:COL: PATH: MESSAGE.
var problemLine = regexp.MustCompile(`^(/[^:]+):(\d+):(\d+): (.+)$`)

// problemsHeader starts the Nix library's list of problems and says how
// many lines follow.
var problemsHeader = regexp.MustCompile(`nixflow: (\d+) problems? in the workflow:$`)

// flakeSource is a flake's copy in the Nix store.
var flakeSource = regexp.MustCompile(`^/nix/store/[0-9a-z]{32}-source/`)

// nixProblems picks the problems the Nix library collected (every unknown
// field, bad value, job and artifact of a workflow at once, each with its
// position when Nix knows it) out of Nix's report, with the files relative
// to the current directory (or to the flake, for a flake's copy in the
// store) and sorted by position. A problem without a position (a value
// Nix did not read from a file, such as builtins.fromJSON's) is given as
// SOURCE: PATH: MESSAGE. It returns nil when the report holds none.
//
// more gives problems found outside Nix (the compiler's checks of the
// conditions, conditionProblems), asked for only when Nix reported some:
// one whose path Nix already reported is left out.
func nixProblems(output, source, flakeDir string, more func() []problem) error {
	var ps []problem
	lines := strings.Split(output, "\n")
	for i, l := range lines {
		m := problemsHeader.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		for _, l := range lines[i+1 : min(len(lines), i+1+n)] {
			l = strings.TrimSpace(l)
			if m := problemLine.FindStringSubmatch(l); m != nil {
				ps = append(ps, placed(m, flakeDir))
			} else if l != "" {
				ps = append(ps, problem{source, 0, 0, l})
			}
		}
		break
	}
	if len(ps) == 0 {
		return nil
	}
	for _, p := range more() {
		if !slices.ContainsFunc(ps, func(q problem) bool { return strings.HasPrefix(q.msg, p.path()+": ") }) {
			ps = append(ps, p)
		}
	}
	slices.SortStableFunc(ps, func(a, b problem) int {
		return cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.line, b.line), cmp.Compare(a.col, b.col))
	})
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return errors.New(strings.Join(out, "\n"))
}

// problem is one mistake of a Nix workflow: msg is "PATH: MESSAGE"; line
// is 0 when its place is not known.
type problem struct {
	file      string
	line, col int
	msg       string
}

// String writes the problem as FILE:LINE:COL: PATH: MESSAGE, or
// FILE: PATH: MESSAGE when its place is not known.
func (p problem) String() string {
	if p.line == 0 {
		return p.file + ": " + p.msg
	}
	return p.file + ":" + strconv.Itoa(p.line) + ":" + strconv.Itoa(p.col) + ": " + p.msg
}

// placed is the problem of problemLine's match m, its file as the user
// knows it.
func placed(m []string, flakeDir string) problem {
	line, _ := strconv.Atoi(m[2])
	col, _ := strconv.Atoi(m[3])
	return problem{displayPath(m[1], flakeDir), line, col, m[4]}
}

// placedFailure is a mistake the Nix library stopped at and placed
// itself (a helper's options: actions.*, envProviders.*): nixflow:
// FILE:LINE:COL: WHAT (a problemLine).
var placedFailure = regexp.MustCompile(`(?m)^\s*error: nixflow: (/.+)$`)

// placedProblem returns the mistake of output that the Nix library
// placed itself; ok is false when output holds none.
func placedProblem(output, flakeDir string) (p problem, ok bool) {
	ms := placedFailure.FindAllStringSubmatch(output, -1)
	if ms == nil {
		return problem{}, false
	}
	m := problemLine.FindStringSubmatch(ms[len(ms)-1][1])
	if m == nil {
		return problem{}, false
	}
	return placed(m, flakeDir), true
}

// jobFailure is the mistake in a job that the Nix library stopped at
// (one it cannot collect with the others: a bad executor, a need given
// twice): nixflow: job "NAME": WHAT.
var jobFailure = regexp.MustCompile(`(?m)^\s*error: nixflow: job "([^"]+)": (.+)$`)

// jobField is the start of WHAT that names a field of the job: "needs[1]:
// ...", "env: ...", "step 2 ("name"): ...", "executors.ssh: ...".
var jobField = regexp.MustCompile(`^(?:([a-zA-Z]+(?:\[\d+\])?): |step (\d+)(?: \("(?:[^"\\]|\\.)*"\))?: |(executors?)[.:])`)

// jobProblem puts the job mistake the Nix library stopped at at its place
// in the Nix workflow src, as a problem on the job's field: its JSON path
// is found from the message, its place from the source map. ok is false
// when the output holds no such mistake.
func (a *app) jobProblem(output, src string) (problem, bool) {
	ms := jobFailure.FindAllStringSubmatch(output, -1)
	if ms == nil {
		return problem{}, false
	}
	name, what := ms[len(ms)-1][1], ms[len(ms)-1][2]
	path := "jobs." + name
	if f := jobField.FindStringSubmatch(what); f != nil {
		switch {
		case f[1] != "":
			path += "." + f[1]
			what = what[len(f[0]):]
		case f[2] != "":
			n, _ := strconv.Atoi(f[2])
			path += fmt.Sprintf(".steps[%d]", n-1)
			what = what[len(f[0]):]
			// The step's own field: "deps[0]: ...".
			if g := jobField.FindStringSubmatch(what); g != nil && g[1] != "" {
				path += "." + g[1]
				what = what[len(g[0]):]
			}
		default: // the executor's own words name it
			path += ".executor"
		}
	}
	p := problem{file: src, msg: path + ": " + what}
	if m, flakeDir := a.sourceMap(src); m != nil {
		if file, line, col := position(m, flakeDir, path); file != "" {
			p.file, p.line, p.col = file, line, col
		}
	}
	return p, true
}

func (p problem) path() string {
	path, _, _ := strings.Cut(p.msg, ": ")
	return path
}

// flakeRefDir is the directory of a local flake reference ("./dir#ci").
func flakeRefDir(ref string) string {
	dir, _, _ := strings.Cut(strings.SplitN(ref, "#", 2)[0], "?")
	return strings.TrimPrefix(dir, "path:")
}

// sourceMap evaluates where the fields of the Nix workflow src are, and
// the text of its conditions; nil for a workflow not in Nix, or when it
// cannot be had (the positions are a help, never a new failure).
func (a *app) sourceMap(src string) (m *nixeval.SourceMap, flakeDir string) {
	opts, err := a.evalOptions()
	if err != nil {
		return nil, ""
	}
	opts.ShowTrace = false
	ctx := context.Background()
	switch {
	case strings.HasSuffix(src, ".nix"):
		m, err = nixeval.FileSourceMap(ctx, src, opts)
		flakeDir = "."
	case strings.Contains(src, "#"):
		ref, rerr := localFlakeRef(src)
		if rerr != nil {
			return nil, ""
		}
		m, err = nixeval.FlakeSourceMap(ctx, ref, opts)
		flakeDir = flakeRefDir(ref)
	default:
		return nil, ""
	}
	if err != nil {
		if a.log != nil {
			a.log.Debug("no source map", "workflow", src, "error", err)
		}
		return nil, ""
	}
	return m, flakeDir
}

// position finds the place of a JSON path in a source map: its own, else
// that of the nearest value around it (jobs.a.needs for jobs.a.needs[1]).
func position(m *nixeval.SourceMap, flakeDir, path string) (file string, line, col int) {
	for p := path; p != ""; {
		if pos, ok := m.Positions[p]; ok {
			if m := posString.FindStringSubmatch(pos); m != nil {
				line, _ = strconv.Atoi(m[2])
				col, _ = strconv.Atoi(m[3])
				return displayPath(m[1], flakeDir), line, col
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return "", 0, 0
}

// posString is a position in a source map: FILE:LINE:COL.
var posString = regexp.MustCompile(`^(.+):(\d+):(\d+)$`)

// conditionProblems checks the conditions of the Nix workflow src as the
// compiler does, for the report of an evaluation that failed on other
// problems: so that one run tells every mistake.
func (a *app) conditionProblems(src string) []problem {
	m, flakeDir := a.sourceMap(src)
	if m == nil {
		return nil
	}
	var ps []problem
	for path, text := range m.Conditions {
		if _, err := compiler.ParseCondition(text); err != nil {
			file, line, col := position(m, flakeDir, path)
			if file == "" {
				file = src
			}
			ps = append(ps, problem{file, line, col, path + ": " + err.Error()})
		}
	}
	return ps
}

// placeErrors puts the compiler's errors about the JSON generated from
// the Nix workflow src at their places in its Nix files, sorted by them.
func (a *app) placeErrors(src string, list compiler.ErrorList) {
	m, flakeDir := a.sourceMap(src)
	if m == nil {
		return
	}
	for _, e := range list {
		if e.Line != 0 || e.Path == "" {
			continue
		}
		if file, line, col := position(m, flakeDir, e.Path); file != "" {
			e.File, e.Line, e.Col = file, line, col
		}
	}
	slices.SortStableFunc(list, func(x, y *compiler.Error) int {
		return cmp.Or(cmp.Compare(x.File, y.File), cmp.Compare(x.Line, y.Line), cmp.Compare(x.Col, y.Col))
	})
}

// displayPath writes a file Nix named as the user knows it.
func displayPath(file, flakeDir string) string {
	if loc := flakeSource.FindStringIndex(file); loc != nil {
		return filepath.Join(flakeDir, file[loc[1]:])
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, file); err == nil && filepath.IsLocal(rel) {
			return rel
		}
	}
	return file
}
