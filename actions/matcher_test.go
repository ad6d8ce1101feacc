package actions

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// naiveSpans is the reference for matcher.spans: every occurrence of
// every string, byte by byte, merged into runs.
func naiveSpans(strs []string, text string) []span {
	covered := make([]bool, len(text)+1)
	for _, s := range strs {
		for from := 0; ; {
			i := strings.Index(text[from:], s)
			if i < 0 {
				break
			}
			for k := from + i; k < from+i+len(s); k++ {
				covered[k] = true
			}
			from += i + 1
		}
	}
	var out []span
	for i := 0; i < len(text); i++ {
		if !covered[i] {
			continue
		}
		j := i
		for covered[j] {
			j++
		}
		out = append(out, span{i, j})
		i = j
	}
	return out
}

// TestMatcher checks the matcher against a search for each string on
// its own, on small alphabets (many overlaps), on every byte value, and
// with as many strings as the snapshot rebuilds for.
func TestMatcher(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	var all strings.Builder
	for b := range 256 {
		all.WriteByte(byte(b))
	}
	for _, alphabet := range []string{"ab", "abc", "abcdefgh", all.String()} {
		for round := range 600 {
			// The shortest string sets how far apart the matcher looks.
			shortest := []int{4, 5, 8, 13}[round%4]
			seen := map[string]bool{}
			var strs []string
			for range 1 + rng.IntN(12) {
				s := word(alphabet, shortest+rng.IntN(5))
				if !seen[s] {
					seen[s] = true
					strs = append(strs, s)
				}
			}
			if round%50 == 0 && alphabet == all.String() {
				strs = append(strs, all.String()) // every byte in use
			}
			a := newMatcher(strs)
			text := word(alphabet, rng.IntN(200))
			got := a.spans(text, nil)
			want := naiveSpans(strs, text)
			if len(got) != len(want) {
				t.Fatalf("strings %q in %q: spans %v, want %v", strs, text, got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("strings %q in %q: spans %v, want %v", strs, text, got, want)
				}
			}
		}
	}
}

// TestMaskerPending masks with values added after the matcher was
// built, searched on their own until the next rebuild.
func TestMaskerPending(t *testing.T) {
	m := NewMasker()
	for i := range 20 {
		m.Add(strings.Repeat(string(rune('a'+i)), 5))
	}
	if got := m.Mask("aaaaa bbbbb"); got != "*** ***" {
		t.Fatalf("Mask = %q", got)
	}
	m.Add("aaxyz") // overlaps a built one: one run
	if got, want := m.Mask("aaaaaxyz ccccc zzz"), "*** *** zzz"; got != want {
		t.Errorf("Mask = %q, want %q", got, want)
	}
	if s := m.snap.Load(); len(s.pending) != 1 {
		t.Errorf("%d values pending, want 1 (no rebuild for one value)", len(s.pending))
	}
}

// TestMaskerManyValues adds thousands of values one at a time, as a step
// announcing them does, masking between them: every value added is
// masked from then on, the values searched one by one stay few, and the
// matchers stay few, each (but small ones) over twice the size of the
// next.
func TestMaskerManyValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m := NewMasker()
	var added []string
	for i := range 5000 {
		// A common prefix (one service's tokens), and lengths that
		// change the matchers' step.
		v := fmt.Sprintf("tok-%0*d", 1+rng.IntN(12), i)
		m.Add(v)
		added = append(added, v)
		if i%7 != 0 {
			continue
		}
		old := added[rng.IntN(len(added))]
		text := "a " + old + " b " + v + " c tok-"
		if got, want := m.Mask(text), replaceSpans(text, naiveSpans(added, text)); got != want {
			t.Fatalf("after %d values, Mask(%q) = %q, want %q", i+1, text, got, want)
		}
		s := m.snap.Load()
		if len(s.pending) > maxPending {
			t.Fatalf("after %d values, %d are searched one by one", i+1, len(s.pending))
		}
		for k := 1; k < len(s.levels); k++ {
			if a, b := s.levels[k-1].count(), s.levels[k].count(); a <= 2*b && a > smallLevel {
				t.Fatalf("after %d values, matchers of %d and %d values are not merged", i+1, a, b)
			}
		}
	}
	if s := m.snap.Load(); len(s.levels) > 7 {
		t.Errorf("%d values in %d matchers", len(added), len(s.levels))
	}
}

// TestMatcherLongStrings finds long strings planted at every offset,
// with a bounded number of pieces for each, however long.
func TestMatcherLongStrings(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcd"[rng.IntN(4)]
		}
		return string(b)
	}
	for round := range 200 {
		var strs []string
		seen := map[string]bool{}
		for range 1 + rng.IntN(4) {
			if s := word(maxStep + 4 + rng.IntN(3000)); !seen[s] {
				seen[s] = true
				strs = append(strs, s)
			}
		}
		m := newMatcher(strs)
		if len(m.pieces) > len(strs)*maxStep {
			t.Fatalf("%d pieces for %d strings", len(m.pieces), len(strs))
		}
		text := word(rng.IntN(100)) + strs[rng.IntN(len(strs))] + word(rng.IntN(100)) + strs[0][:len(strs[0])-1]
		got, want := m.spans(text, nil), naiveSpans(strs, text)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: spans %v, want %v", round, got, want)
		}
	}
}

// TestMatcherNestedValues masks text in which hundreds of values occur
// at every position: the spans are merged as they are found, not kept
// one for each value and position until the end (1.5 GB for this line).
func TestMatcherNestedValues(t *testing.T) {
	var strs []string
	for n := 4; n < 304; n++ {
		strs = append(strs, strings.Repeat("a", n))
	}
	m := newMatcher(strs)
	text := strings.Repeat("a", 64<<10) + " b"
	spans := m.spans(text, nil)
	if want := []span{{0, 64 << 10}}; fmt.Sprint(spans) != fmt.Sprint(want) {
		t.Fatalf("spans %v, want %v", spans, want)
	}
	if cap(spans) > 1024 {
		t.Errorf("%d spans held on the way", cap(spans))
	}
}

// TestMatcherLongValuesNotInRuns: strings longer than maxRunLen that
// share pieces are compared one by one, which stops at the first byte
// that differs, not looked up in the set, which hashes the whole length
// at every window.
func TestMatcherLongValuesNotInRuns(t *testing.T) {
	long := strings.Repeat("A", 100)
	strs := []string{long + strings.Repeat("b", 1000), long + strings.Repeat("c", 1000), "tok-1111", "tok-2222"}
	m := newMatcher(strs)
	for _, p := range m.pieces {
		if len(m.strs[p.str]) > maxRunLen && p.run != 1 {
			t.Fatalf("a piece of a %d-byte string is in a run of %d", len(m.strs[p.str]), p.run)
		}
	}
	text := "x " + strs[1] + " tok-2222 " + long
	if got, want := fmt.Sprint(m.spans(text, nil)), fmt.Sprint(naiveSpans(strs, text)); got != want {
		t.Errorf("spans %v, want %v", got, want)
	}
}
