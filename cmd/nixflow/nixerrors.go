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

// flakeSource is a flake's copy in the Nix store.
var flakeSource = regexp.MustCompile(`^/nix/store/[0-9a-z]{32}-source/`)

// nixProblems picks the problems the Nix library collected (every unknown
// field, job and artifact of a workflow at once, each with its position)
// out of Nix's report, with the files relative to the current directory
// (or to the flake, for a flake's copy in the store) and sorted by
// position. It returns nil when the report holds none.
func nixProblems(output, flakeDir string) error {
	if !strings.Contains(output, " in the workflow:") {
		return nil
	}
	type problem struct {
		file      string
		line, col int
		msg       string
	}
	var ps []problem
	for l := range strings.SplitSeq(output, "\n") {
		m := problemLine.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		line, _ := strconv.Atoi(m[2])
		col, _ := strconv.Atoi(m[3])
		ps = append(ps, problem{displayPath(m[1], flakeDir), line, col, m[4]})
	}
	if len(ps) == 0 {
		return nil
	}
	slices.SortStableFunc(ps, func(a, b problem) int {
		return cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.line, b.line), cmp.Compare(a.col, b.col))
	})
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.file + ":" + strconv.Itoa(p.line) + ":" + strconv.Itoa(p.col) + ": " + p.msg
	}
	return errors.New(strings.Join(lines, "\n"))
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
