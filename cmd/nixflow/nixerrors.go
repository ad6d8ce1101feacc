package main

import (
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
func nixProblems(output, source, flakeDir string) error {
	type problem struct {
		file      string
		line, col int
		msg       string
	}
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
				line, _ := strconv.Atoi(m[2])
				col, _ := strconv.Atoi(m[3])
				ps = append(ps, problem{displayPath(m[1], flakeDir), line, col, m[4]})
			} else if l != "" {
				ps = append(ps, problem{source, 0, 0, l})
			}
		}
		break
	}
	if len(ps) == 0 {
		return nil
	}
	slices.SortStableFunc(ps, func(a, b problem) int {
		return cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.line, b.line), cmp.Compare(a.col, b.col))
	})
	out := make([]string, len(ps))
	for i, p := range ps {
		if p.line == 0 {
			out[i] = p.file + ": " + p.msg
			continue
		}
		out[i] = p.file + ":" + strconv.Itoa(p.line) + ":" + strconv.Itoa(p.col) + ": " + p.msg
	}
	return errors.New(strings.Join(out, "\n"))
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
