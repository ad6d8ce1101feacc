package compiler

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Error is one problem in a workflow, at a position of its source.
type Error struct {
	File string
	// Line and Col are 1-based; zero when the problem has no position.
	Line, Col int
	// Path is the JSON path of the value at fault, e.g. jobs.deploy.needs[1].
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Col)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a workflow, sorted by position. The
// compiler returns all of them at once, so that one edit fixes them all.
type ErrorList []*Error

func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Msg < b.Msg
	})
}

// suggest returns the known name closest to name, if it is close enough to
// be a likely typo.
func suggest(name string, known []string) string {
	n := utf8.RuneCountInString(name)
	if n > maxSuggestLen {
		return ""
	}
	limit := min(max(len(name)/3, 1), 3)
	lower := strings.ToLower(name)
	best, bestDist := "", -1
	for _, k := range known {
		// The distance is at least the difference in length: names much
		// longer or shorter cannot be close enough.
		// Cheap bounds first: a name has at most as many runes as bytes,
		// and at least a quarter.
		if len(k) < n-limit || len(k) > 4*(n+limit) {
			continue
		}
		if m := utf8.RuneCountInString(k); m > maxSuggestLen || m-n > limit || n-m > limit {
			continue
		}
		d := editDistance(lower, strings.ToLower(k))
		if bestDist < 0 || d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	if bestDist < 0 || bestDist > limit || bestDist >= len([]rune(name)) {
		return ""
	}
	return best
}

// didYouMean formats a suggestion for a message, or nothing.
func didYouMean(name string, known []string) string {
	if s := suggest(name, known); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// editDistance is the Damerau-Levenshtein distance (with adjacent
// transpositions), so that "biuld" is one edit from "build". It keeps
// three rows of the table, not all of it.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
