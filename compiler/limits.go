package compiler

import (
	"bytes"
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

// positions finds line and column of offsets in a file with a cursor:
// offsets asked in file order (as a document is decoded) cost one scan
// of the file in all, and no memory; an offset before the cursor (errors
// are sorted, and the graph is checked after decoding) needs the table of
// line starts, built then, once.
type positions struct {
	data   []byte
	starts []int // offsets where lines start, built when first needed
	// The last answer: scanning on from it is cheapest.
	off, line, col int
}

func newPositions(data []byte) *positions {
	return &positions{data: data, line: 1, col: 1}
}

// at returns the 1-based line and column (in runes) of offset.
func (p *positions) at(offset int) (line, col int) {
	offset = min(max(offset, 0), len(p.data))
	if offset < p.off {
		if p.starts == nil {
			p.starts = []int{0}
			for i, c := range p.data {
				if c == '\n' {
					p.starts = append(p.starts, i+1)
				}
			}
		}
		i := sort.Search(len(p.starts), func(i int) bool { return p.starts[i] > offset }) - 1
		p.off, p.line, p.col = p.starts[i], i+1, 1
	}
	seg := p.data[p.off:offset]
	if k := bytes.Count(seg, []byte{'\n'}); k > 0 {
		p.line += k
		p.col = 1
		seg = seg[bytes.LastIndexByte(seg, '\n')+1:]
	}
	p.col += utf8.RuneCount(seg)
	p.off = offset
	return p.line, p.col
}
