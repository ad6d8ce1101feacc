package actions

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// minSecretLen is the shortest value that is masked: shorter values would
// mask ordinary text everywhere and tell little about the secret anyway.
const minSecretLen = 4

// Masker replaces secret values by *** in text. Values are added as they
// become known (from providers, or announced by a step with
// ::add-mask::VALUE) and masking applies from then on. A multi-line value
// is masked line by line. Where secrets overlap, the union of their
// occurrences is masked as one, so that no part of either shows. It is safe
// for concurrent use.
//
// Masking reads an immutable snapshot of the secrets without a lock: a
// few multi-pattern matchers, each of which finds every occurrence of its
// secrets in one pass over the text, and a short list of the values added
// since the last of them was built, searched one by one until there are
// enough of them to build another. Matchers are merged as they come, like
// the digits of a binary counter: a step that announces many values one
// at a time costs O(log n) rebuilds per value, not one per value, and
// masking searches O(log n) matchers.
type Masker struct {
	mu     sync.Mutex // serialises Add and rebuilds
	values map[string]bool
	snap   atomic.Pointer[maskSnapshot]
}

// maskSnapshot is the secrets as masking sees them at one moment.
type maskSnapshot struct {
	// levels is the matchers, largest first, each over twice the size
	// of the next unless it is small.
	levels  []*matcher
	pending []string // added since the last level was built
	built   int      // values in levels
	longest int
}

// NewMasker returns a masker with no secrets.
func NewMasker() *Masker {
	m := &Masker{values: map[string]bool{}}
	m.snap.Store(&maskSnapshot{})
	return m
}

// Add registers a secret value. A multi-line value is masked line by
// line, each line by its text without the blanks around it (a value
// printed by an unquoted echo, or a JSON document printed on one line,
// loses them). It reports false, and masks nothing, when no line of the
// value is long enough to mask (the minimum length); the lines too short
// of a value masked otherwise ("{" and "}" of a JSON key) are not masked.
func (m *Masker) Add(value string) bool {
	lines, short := secretLines(value)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, line := range lines {
		if !m.values[line] {
			m.values[line] = true
			// Copy on write: Mask reads the old snapshot without the lock.
			old := m.snap.Load()
			s := &maskSnapshot{
				levels:  old.levels,
				pending: append(slices.Clip(old.pending), line),
				built:   old.built,
				longest: max(old.longest, len(line)),
			}
			if len(s.pending) > maxPending {
				s = s.compact()
			}
			m.snap.Store(s)
		}
	}
	return len(lines) > 0 || !short
}

// secretLines is what of value is masked: its lines, blanks around them
// trimmed, that are long enough; short tells that a line was too short.
func secretLines(value string) (lines []string, short bool) {
	for line := range strings.SplitSeq(value, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case len(line) < minSecretLen:
			short = true
		default:
			lines = append(lines, line)
		}
	}
	return lines, short
}

// has reports whether value is masked already: some line of it, and
// every line long enough.
func (m *Masker) has(value string) bool {
	lines, _ := secretLines(value)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, line := range lines {
		if !m.values[line] {
			return false
		}
	}
	return len(lines) > 0
}

// fewSecrets is how many secrets are searched one by one at most while
// there is no matcher: up to that many, strings.Index (vectorised) on
// each is faster than the matcher.
const fewSecrets = 3

// maxPending bounds the values searched one by one besides the matchers.
const maxPending = 32

// smallLevel is the size up to which a matcher is merged into the next
// whatever their sizes: rebuilding it costs less than searching one more.
const smallLevel = 128

// current returns the snapshot to mask with, first building a matcher of
// the values added since the last one when they are many compared with
// those in the matchers.
func (m *Masker) current() *maskSnapshot {
	s := m.snap.Load()
	if len(s.pending) == 0 || len(s.pending)*8 <= s.built || s.built+len(s.pending) <= fewSecrets {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s = m.snap.Load()
	if len(s.pending) == 0 {
		return s // built meanwhile
	}
	s = s.compact()
	m.snap.Store(s)
	return s
}

// compact returns a snapshot with a matcher of s's pending values
// instead of them, merged with the last matchers of s while the one
// before is no more than twice its size, or small.
func (s *maskSnapshot) compact() *maskSnapshot {
	levels := append(slices.Clip(s.levels), newMatcher(s.pending))
	for n := len(levels); n >= 2; n-- {
		prev, last := levels[n-2], levels[n-1]
		if prev.count() > 2*last.count() && prev.count() > smallLevel {
			break
		}
		levels = append(levels[:n-2], newMatcher(slices.Concat(prev.strs, last.strs)))
	}
	return &maskSnapshot{levels: levels, built: s.built + len(s.pending), longest: s.longest}
}

// longest is the length of the longest secret, 0 without secrets.
func (m *Masker) longest() int {
	if m == nil {
		return 0
	}
	return m.snap.Load().longest
}

// span is a run of text covered by occurrences of secrets, [start, end).
type span struct{ start, end int }

// maskPrefix masks s and cuts it at limit (before it, where limit would
// cut a UTF-8 character in two), or where no occurrence of a secret
// straddles the cut: back to the start of a masked run that
// straddles limit, or, when that run starts s, on to its end. It returns
// the masked text of s[:n] and n. s must hold the longest secret's
// length past limit, so that every occurrence starting before limit is
// whole in s.
//
// ctx is the end of the line's previous piece (up to the longest secret
// less one byte): an occurrence that starts there, chained to a run that
// piece masked, is masked here too.
func (m *Masker) maskPrefix(ctx, s string, limit int) (string, int) {
	n := runeStart(s, min(limit, len(s)))
	if n >= len(s) {
		return m.maskAfter(ctx, s), len(s)
	}
	spans := m.spansAfter(ctx, s)
	for _, r := range spans {
		if r.start < n && r.end > n {
			if r.start > 0 {
				n = r.start
			} else {
				n = r.end
			}
			break
		}
	}
	return replaceSpans(s[:n], spans), n
}

// runeStart is where to cut s at or before n so that no UTF-8 character
// is cut in two (its halves would each show as U+FFFD): n, or up to
// three bytes before it, at the start of a character that n would cut.
func runeStart(s string, n int) int {
	for i := n - 1; i >= 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if !utf8.FullRuneInString(s[i:n]) {
				return i
			}
			return n
		}
	}
	return n
}

// maskAfter is Mask for the last piece of a line cut before it: ctx is
// the end of the piece before (see maskPrefix).
func (m *Masker) maskAfter(ctx, s string) string {
	if ctx == "" {
		return m.Mask(s)
	}
	return replaceSpans(s, m.spansAfter(ctx, s))
}

// spansAfter is the spans of s, with those of occurrences that start in
// ctx, which comes before s, clipped to s.
func (m *Masker) spansAfter(ctx, s string) []span {
	if m == nil {
		return nil
	}
	all := m.current().spans(ctx+s, nil)
	spans := all[:0]
	for _, r := range all {
		if r.end <= len(ctx) {
			continue
		}
		spans = append(spans, span{max(r.start-len(ctx), 0), r.end - len(ctx)})
	}
	return spans
}

// Mask returns s with every occurrence of every secret replaced by ***.
// Text without secrets is returned as it is, without allocating.
func (m *Masker) Mask(s string) string {
	if m == nil || len(s) < minSecretLen {
		return s
	}
	snap := m.current()
	if snap.longest == 0 {
		return s
	}
	var buf [8]span
	return replaceSpans(s, snap.spans(s, buf[:0]))
}

// spans appends to dst the runs of s covered by occurrences of secrets,
// in order, merged where they overlap or touch.
func (s *maskSnapshot) spans(text string, dst []span) []span { return snapshotSpans(s, text, dst) }

// snapshotSpans is maskSnapshot.spans for a text of either type.
func snapshotSpans[T string | []byte](s *maskSnapshot, text T, dst []span) []span {
	n0 := len(dst)
	sources := 0 // that found anything
	for _, ac := range s.levels {
		n := len(dst)
		if dst = matchSpans(ac, text, dst); len(dst) > n {
			sources++
		}
	}
	n := len(dst)
	for _, sec := range s.pending {
		for from := 0; from+len(sec) <= len(text); {
			i := index(text[from:], sec)
			if i < 0 {
				break
			}
			dst = append(dst, span{from + i, from + i + len(sec)})
			from += i + 1
		}
	}
	if len(dst) > n {
		sources++
	}
	if sources < 2 && len(dst) == n {
		return dst // one matcher's spans: sorted and merged
	}
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

// index is strings.Index for a text of either type.
func index[T string | []byte](text T, sub string) int {
	switch t := any(text).(type) {
	case string:
		return strings.Index(t, sub)
	case []byte:
		return bytes.Index(t, []byte(sub))
	}
	return -1
}

// maskLines masks a block of complete lines: it returns lines as they
// are when they hold no secret, else the masked text, appended to
// (*buf)[:0]. Masking the block is masking each line: no secret holds a
// newline (Add splits values into lines).
func (m *Masker) maskLines(lines []byte, buf *[]byte, spans *[]span) []byte {
	if m == nil || len(lines) < minSecretLen {
		return lines
	}
	snap := m.current()
	if snap.longest == 0 {
		return lines
	}
	*spans = snapshotSpans(snap, lines, (*spans)[:0])
	if len(*spans) == 0 {
		return lines
	}
	b := (*buf)[:0]
	at := 0
	for _, r := range *spans {
		b = append(b, lines[at:r.start]...)
		b = append(b, "***"...)
		at = r.end
	}
	b = append(b, lines[at:]...)
	*buf = b
	return b
}

// replaceSpans replaces each span of s by one ***. Spans may reach past
// the end of s.
func replaceSpans(s string, spans []span) string {
	if len(spans) == 0 || spans[0].start >= len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for _, r := range spans {
		if r.start >= len(s) {
			break
		}
		b.WriteString(s[at:r.start])
		b.WriteString("***")
		at = min(r.end, len(s))
	}
	b.WriteString(s[at:])
	return b.String()
}
