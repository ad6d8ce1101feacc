package actions

import (
	"cmp"
	"slices"
)

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
	strs   []string
	step   int // positions between windows: the shortest string's length - 3, at most maxStep
	filter [1 << hashBits / 64]uint64
	// pieces is every string's pieces, grouped by the top bucketBits bits
	// of their hash: those of bucket b are pieces[start[b]:start[b+1]],
	// sorted by hash, offset and length.
	pieces     []piece
	start      []int32
	bucketBits int
	// set is strs as a set, for runs of pieces of more than one string.
	set map[string]struct{}
}

// piece is a string known by its 4 bytes at off. Pieces with the same
// hash, offset and length (strings with a common prefix, such as the
// tokens of one service) form a run: for a window, at most one string of
// a run is in the text there, the one spelt by the text where it would
// be, so a run costs one look-up in set however long it is. The first
// piece of a run holds its length.
//
// A piece holds no pointer, so that the garbage collector need not scan
// the pieces.
type piece struct {
	str  int32 // index in strs
	off  int32
	hash uint32
	run  int32
}

const hashBits = 16

// maxStep bounds the positions between windows, and so the pieces of a
// string: long values (an announced one can be a MiB long) would
// otherwise cost memory in proportion to their length, for every one of
// them, when all the values are long.
const maxStep = 64

func hash4(w uint32) uint32 { return (w * 2654435761) >> (32 - hashBits) }

// newMatcher compiles strs: distinct, each at least 4 bytes long. It
// keeps strs.
func newMatcher(strs []string) *matcher {
	m := &matcher{strs: strs, step: maxStep}
	for _, s := range strs {
		m.step = min(m.step, len(s)-3)
	}
	// About one piece per bucket, up to the hash's bits.
	n := len(strs) * m.step
	for m.bucketBits < hashBits && 1<<m.bucketBits < n {
		m.bucketBits++
	}
	m.start = make([]int32, 1<<m.bucketBits+1)
	hashes := make([]uint32, 0, n)
	for _, s := range strs {
		for off := range m.step {
			h := hash4(uint32(s[off]) | uint32(s[off+1])<<8 | uint32(s[off+2])<<16 | uint32(s[off+3])<<24)
			m.filter[h/64] |= 1 << (h % 64)
			m.start[h>>(hashBits-m.bucketBits)+1]++
			hashes = append(hashes, h)
		}
	}
	for b := range 1 << m.bucketBits {
		m.start[b+1] += m.start[b]
	}
	// A counting sort: next[b] is where bucket b's next piece goes.
	next := slices.Clone(m.start[:len(m.start)-1])
	m.pieces = make([]piece, n)
	i := 0
	for k := range strs {
		for off := range m.step {
			h := hashes[i]
			i++
			b := h >> (hashBits - m.bucketBits)
			m.pieces[next[b]] = piece{int32(k), int32(off), h, 1}
			next[b]++
		}
	}
	for b := range 1 << m.bucketBits {
		m.runs(m.pieces[m.start[b]:m.start[b+1]])
	}
	return m
}

// maxRunLen is the length up to which strings form runs: looking one up
// hashes all of it where comparing it stops at the first byte that
// differs, so a long string is compared on its own.
const maxRunLen = 256

// runs sorts the pieces of a bucket and marks their runs.
func (m *matcher) runs(ps []piece) {
	if len(ps) < 2 {
		return
	}
	key := func(p piece) uint64 { return uint64(p.hash)<<48 | uint64(p.off)<<32 | uint64(len(m.strs[p.str])) }
	slices.SortFunc(ps, func(a, b piece) int { return cmp.Compare(key(a), key(b)) })
	for i := 0; i < len(ps); {
		j := i + 1
		for j < len(ps) && key(ps[j]) == key(ps[i]) && len(m.strs[ps[i].str]) <= maxRunLen {
			j++
		}
		if ps[i].run = int32(j - i); j-i > 1 && m.set == nil {
			m.set = make(map[string]struct{}, len(m.strs))
			for _, s := range m.strs {
				m.set[s] = struct{}{}
			}
		}
		i = j
	}
}

// count is how many strings m finds.
func (m *matcher) count() int { return len(m.strs) }

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
		b := h >> (hashBits - m.bucketBits)
		ps := m.pieces[m.start[b]:m.start[b+1]]
		for k := 0; k < len(ps); {
			p := ps[k]
			k += int(p.run)
			if p.hash != h {
				continue
			}
			start, s := i-int(p.off), m.strs[p.str]
			if start < 0 || len(text)-start < len(s) {
				continue
			}
			if p.run == 1 {
				if string(text[start:start+len(s)]) != s {
					continue
				}
			} else if _, ok := m.set[string(text[start:start+len(s)])]; !ok {
				continue
			}
			// Merged with the last found if they overlap or touch: text
			// in which many strings occur at every position (nested
			// values) makes one span, not one for each.
			r := span{start, start + len(s)}
			if k := len(dst) - 1; found && r.start <= dst[k].end && r.end >= dst[k].start {
				dst[k] = span{min(dst[k].start, r.start), max(dst[k].end, r.end)}
				continue
			}
			dst = append(dst, r)
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
