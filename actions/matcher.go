package actions

// matcher finds every occurrence of a set of strings (each at least
// minSecretLen bytes) in one pass over a text. It is Rabin–Karp on the
// strings' first four bytes: a rolling 4-byte window of the text is
// hashed at each position and looked up in a bit set of the strings'
// hashed prefixes (8 KiB, so it stays in the CPU's cache); only where a
// bit is set are the strings of that hash compared. Text that holds no
// secret, nearly all of it, costs a few instructions per byte with no
// dependency between positions, several times faster than a table-driven
// automaton, whatever the number of strings.
type matcher struct {
	count   int // strings in it
	filter  [1 << hashBits / 64]uint64
	buckets map[uint32][]string
}

const hashBits = 16

func hash4(w uint32) uint32 { return (w * 2654435761) >> (32 - hashBits) }

// newMatcher compiles strs: distinct, each at least 4 bytes long.
func newMatcher(strs []string) *matcher {
	m := &matcher{count: len(strs), buckets: make(map[uint32][]string, len(strs))}
	for _, s := range strs {
		h := hash4(uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24)
		m.filter[h/64] |= 1 << (h % 64)
		m.buckets[h] = append(m.buckets[h], s)
	}
	return m
}

// spans appends to dst the runs of text covered by occurrences of the
// strings, in order, merged where they overlap or touch.
func (m *matcher) spans(text string, dst []span) []span { return matchSpans(m, text, dst) }

// matchSpans is matcher.spans for a text of either type: a block of
// output lines is searched where it was read, without a copy.
func matchSpans[T string | []byte](m *matcher, text T, dst []span) []span {
	if len(text) < 4 {
		return dst
	}
	w := uint32(text[0])<<8 | uint32(text[1])<<16 | uint32(text[2])<<24
	for i := 3; i < len(text); i++ {
		w = w>>8 | uint32(text[i])<<24
		h := hash4(w)
		if m.filter[h/64]&(1<<(h%64)) == 0 {
			continue
		}
		start := i - 3
		for _, s := range m.buckets[h] {
			if len(text)-start < len(s) || string(text[start:start+len(s)]) != s {
				continue
			}
			end := start + len(s)
			if k := len(dst); k > 0 && start <= dst[k-1].end {
				dst[k-1].end = max(dst[k-1].end, end)
			} else {
				dst = append(dst, span{start, end})
			}
		}
	}
	return dst
}
