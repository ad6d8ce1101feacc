package compiler

import (
	"sort"
	"unicode/utf8"
)

// Inputs of any size must validate fast: a generated graph with
// thousands of mistakes, or a name thousands of characters long, must not
// take minutes or gigabytes to report. Two things could: finding each
// error's line and column by scanning the file from its start, and the
// edit distance behind "did you mean" on long names.

// maxSuggestLen is the longest name (in runes) a suggestion is looked for:
// a typo in a longer name is not what happened.
const maxSuggestLen = 64

// positions finds line and column of offsets in a file: a table of line
// starts, built once, and a cursor, so that errors met in file order cost
// a scan of the file in all.
type positions struct {
	data   []byte
	starts []int // offsets where lines start
	// The last answer: scanning on from it is cheapest.
	off, line, col int
}

func newPositions(data []byte) *positions {
	p := &positions{data: data, starts: []int{0}, line: 1, col: 1}
	for i, c := range data {
		if c == '\n' {
			p.starts = append(p.starts, i+1)
		}
	}
	return p
}

// at returns the 1-based line and column (in runes) of offset.
func (p *positions) at(offset int) (line, col int) {
	offset = min(max(offset, 0), len(p.data))
	i := sort.Search(len(p.starts), func(i int) bool { return p.starts[i] > offset }) - 1
	start := p.starts[i]
	if p.line != i+1 || p.off > offset {
		p.off, p.line, p.col = start, i+1, 1
	}
	p.col += utf8.RuneCount(p.data[p.off:offset])
	p.off = offset
	return p.line, p.col
}
