package actions

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
// Masking reads an immutable snapshot of the secrets without a lock: an
// multi-pattern matcher of most of them, which finds every occurrence of
// every secret in one pass over the text, and a short list of the values
// added since it was built, searched one by one until there are enough of
// them to rebuild it (so that adding secrets one at a time while masking
// costs a few rebuilds in all, not one per secret).
type Masker struct {
	mu     sync.Mutex // serialises Add and rebuilds
	values map[string]bool
	snap   atomic.Pointer[maskSnapshot]
}

// maskSnapshot is the secrets as masking sees them at one moment.
type maskSnapshot struct {
	ac      *matcher // nil without secrets
	pending []string // added since ac was built
	longest int
}

// NewMasker returns a masker with no secrets.
func NewMasker() *Masker {
	m := &Masker{values: map[string]bool{}}
	m.snap.Store(&maskSnapshot{})
	return m
}

// Add registers a secret value. It reports false, and masks nothing, for
// a value (or a line of it) shorter than the minimum length.
func (m *Masker) Add(value string) bool {
	ok := true
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, line := range strings.Split(value, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if len(line) < minSecretLen {
			ok = false
			continue
		}
		if !m.values[line] {
			m.values[line] = true
			// Copy on write: Mask reads the old snapshot without the lock.
			old := m.snap.Load()
			m.snap.Store(&maskSnapshot{
				ac:      old.ac,
				pending: append(slices.Clip(old.pending), line),
				longest: max(old.longest, len(line)),
			})
		}
	}
	return ok
}

// has reports whether value is masked already (every line of it).
func (m *Masker) has(value string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, line := range strings.Split(value, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) != "" && !m.values[line] {
			return false
		}
	}
	return true
}

// fewSecrets is how many secrets are searched one by one at most.
const fewSecrets = 3

// current returns the snapshot to mask with, first rebuilding the
// matcher if the values added since it was built are many compared
// with those in it.
func (m *Masker) current() *maskSnapshot {
	s := m.snap.Load()
	built := 0
	if s.ac != nil {
		built = s.ac.count
	}
	// Up to fewSecrets, strings.Index (vectorised) on each is faster
	// than the matcher.
	if len(s.pending) == 0 || len(s.pending)*8 <= built || built+len(s.pending) <= fewSecrets {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s = m.snap.Load()
	if len(s.pending) == 0 {
		return s // rebuilt meanwhile
	}
	values := make([]string, 0, len(m.values))
	for v := range m.values {
		values = append(values, v)
	}
	s = &maskSnapshot{ac: newMatcher(values), longest: s.longest}
	m.snap.Store(s)
	return s
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

// maskPrefix masks s and cuts it at limit, or where no occurrence of a
// secret straddles the cut: back to the start of a masked run that
// straddles limit, or, when that run starts s, on to its end. It returns
// the masked text of s[:n] and n. s must hold the longest secret's
// length past limit, so that every occurrence starting before limit is
// whole in s.
//
// ctx is the end of the line's previous piece (up to the longest secret
// less one byte): an occurrence that starts there, chained to a run that
// piece masked, is masked here too.
func (m *Masker) maskPrefix(ctx, s string, limit int) (string, int) {
	if limit >= len(s) {
		return m.maskAfter(ctx, s), len(s)
	}
	spans := m.spansAfter(ctx, s)
	n := limit
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
	if s.ac != nil {
		dst = matchSpans(s.ac, text, dst)
	}
	if len(s.pending) == 0 {
		return dst
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
	if len(dst) == n {
		return dst
	}
	slices.SortFunc(dst, func(a, b span) int { return a.start - b.start })
	out := dst[:0]
	for _, r := range dst {
		if k := len(out); k > 0 && r.start <= out[k-1].end {
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
