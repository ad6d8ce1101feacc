package actions

import (
	"slices"
	"sort"
	"strings"
	"sync"
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
type Masker struct {
	mu     sync.RWMutex
	values map[string]bool
	sorted []string // longest first
}

// NewMasker returns a masker with no secrets.
func NewMasker() *Masker {
	return &Masker{values: map[string]bool{}}
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
			// Copy on write: Mask reads the old slice without the lock.
			sorted := append(slices.Clone(m.sorted), line)
			sort.Slice(sorted, func(i, j int) bool {
				if len(sorted[i]) != len(sorted[j]) {
					return len(sorted[i]) > len(sorted[j])
				}
				return sorted[i] < sorted[j]
			})
			m.sorted = sorted
		}
	}
	return ok
}

// has reports whether value is masked already (every line of it).
func (m *Masker) has(value string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, line := range strings.Split(value, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) != "" && !m.values[line] {
			return false
		}
	}
	return true
}

// longest is the length of the longest secret, 0 without secrets.
func (m *Masker) longest() int {
	if m == nil {
		return 0
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.sorted) == 0 {
		return 0
	}
	return len(m.sorted[0])
}

// maskPrefix masks s and cuts it at limit, or where no occurrence of a
// secret straddles the cut: back to the start of a masked run that
// straddles limit, or, when that run starts s, on to its end. It returns
// the masked text of s[:n] and n. s must hold the longest secret's
// length past limit, so that every occurrence starting before limit is
// whole in s.
func (m *Masker) maskPrefix(s string, limit int) (string, int) {
	if limit >= len(s) {
		return m.Mask(s), len(s)
	}
	covered := m.coverage(s)
	n := limit
	if covered != nil && covered[n-1] && covered[n] {
		start := n
		for start > 0 && covered[start-1] {
			start--
		}
		if start > 0 {
			n = start
		} else {
			for n < len(s) && covered[n] {
				n++
			}
		}
	}
	return replaceCovered(s[:n], covered), n
}

// Mask returns s with every occurrence of every secret replaced by ***.
func (m *Masker) Mask(s string) string {
	if m == nil {
		return s
	}
	m.mu.RLock()
	secrets := m.sorted
	m.mu.RUnlock()
	if len(secrets) == 0 || len(s) < minSecretLen {
		return s
	}
	return replaceCovered(s, m.coverage(s))
}

// coverage marks every byte of s covered by an occurrence of a secret;
// nil when there is none.
func (m *Masker) coverage(s string) []bool {
	if m == nil {
		return nil
	}
	m.mu.RLock()
	secrets := m.sorted
	m.mu.RUnlock()
	var covered []bool
	for _, sec := range secrets {
		for from := 0; from+len(sec) <= len(s); {
			i := strings.Index(s[from:], sec)
			if i < 0 {
				break
			}
			if covered == nil {
				covered = make([]bool, len(s))
			}
			start := from + i
			for k := start; k < start+len(sec); k++ {
				covered[k] = true
			}
			from = start + 1
		}
	}
	return covered
}

// replaceCovered replaces each run of covered bytes of s by one ***.
// covered may be longer than s, or nil.
func replaceCovered(s string, covered []bool) string {
	if covered == nil {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if !covered[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString("***")
		for i < len(s) && covered[i] {
			i++
		}
	}
	return b.String()
}
