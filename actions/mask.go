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

// safeCut returns where s may be cut, at limit or before, so that no
// occurrence of a secret straddles the cut.
func (m *Masker) safeCut(s string, limit int) int {
	if m == nil {
		return limit
	}
	m.mu.RLock()
	secrets := m.sorted
	m.mu.RUnlock()
	cut := limit
	for _, sec := range secrets {
		// An occurrence straddling cut starts in (cut-len(sec), cut).
		from := max(cut-len(sec)+1, 0)
		to := min(cut+len(sec)-1, len(s))
		if from >= to {
			continue
		}
		if i := strings.Index(s[from:to], sec); i >= 0 && from+i > 0 {
			cut = from + i
		}
	}
	return cut
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
	// Mark every byte covered by an occurrence, then replace each run of
	// marked bytes by one ***.
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
