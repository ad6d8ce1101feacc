package actions

import "slices"

// matcher finds every occurrence of a set of strings (each at least
// minSecretLen bytes) in one pass over a text. It is Rabin–Karp on 4-byte
// pieces of the strings: a 4-byte window of the text is hashed and looked
// up in a bit set of the strings' hashed pieces (8 KiB, so it stays in the
// CPU's cache); only where a bit is set are the strings of that hash
// compared. The window does not visit every position: with the shortest
// string n bytes long, every occurrence holds n-3 consecutive windows, so
// the matcher looks at every (n-3)th position and knows, for each string,
// its pieces at offsets 0 to n-4 (one of them is at a visited position).
// Text that holds no secret, nearly all of it, costs a few instructions
// per visited position, whatever the number of strings, and the longer
// the secrets the fewer positions are visited.
type matcher struct {
	count   int // strings in it
	step    int // positions between windows: the shortest string's length - 3
	filter  [1 << hashBits / 64]uint64
	buckets map[uint32][]piece
}

// piece is a string known by its 4 bytes at off.
type piece struct {
	s   string
	off int
}

const hashBits = 16

func hash4(w uint32) uint32 { return (w * 2654435761) >> (32 - hashBits) }

// newMatcher compiles strs: distinct, each at least 4 bytes long.
func newMatcher(strs []string) *matcher {
	m := &matcher{count: len(strs), step: -1, buckets: make(map[uint32][]piece, len(strs))}
	for _, s := range strs {
		if m.step < 0 || len(s)-3 < m.step {
			m.step = len(s) - 3
		}
	}
	for _, s := range strs {
		for off := 0; off < m.step; off++ {
			h := hash4(uint32(s[off]) | uint32(s[off+1])<<8 | uint32(s[off+2])<<16 | uint32(s[off+3])<<24)
			m.filter[h/64] |= 1 << (h % 64)
			m.buckets[h] = append(m.buckets[h], piece{s, off})
		}
	}
	return m
}

// spans appends to dst the runs of text covered by occurrences of the
// strings, in order, merged where they overlap or touch.
func (m *matcher) spans(text string, dst []span) []span { return matchSpans(m, text, dst) }

// matchSpans is matcher.spans for a text of either type: a block of
// output lines is searched where it was read, without a copy.
func matchSpans[T string | []byte](m *matcher, text T, dst []span) []span {
	n0 := len(dst)
	found := false
	for i := 0; i+4 <= len(text); i += m.step {
		h := hash4(uint32(text[i]) | uint32(text[i+1])<<8 | uint32(text[i+2])<<16 | uint32(text[i+3])<<24)
		if m.filter[h/64]&(1<<(h%64)) == 0 {
			continue
		}
		for _, p := range m.buckets[h] {
			start := i - p.off
			if start < 0 || len(text)-start < len(p.s) || string(text[start:start+len(p.s)]) != p.s {
				continue
			}
			dst = append(dst, span{start, start + len(p.s)})
			found = true
		}
	}
	if !found {
		return dst
	}
	// Occurrences are found up to step-1 positions out of order: sort
	// them, and merge those that overlap or touch.
	added := dst[n0:]
	slices.SortFunc(added, func(a, b span) int { return a.start - b.start })
	out := dst[:n0]
	for _, r := range added {
		if k := len(out); k > n0 && r.start <= out[k-1].end {
			out[k-1].end = max(out[k-1].end, r.end)
			continue
		}
		out = append(out, r)
	}
	return out
}
