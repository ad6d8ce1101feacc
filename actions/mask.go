package actions

import (
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
// is masked line by line. It is safe for concurrent use.
type Masker struct {
	mu       sync.RWMutex
	values   map[string]bool
	replacer *strings.Replacer
}

// NewMasker returns a masker with no secrets.
func NewMasker() *Masker {
	return &Masker{values: map[string]bool{}}
}

// Add registers a secret value. It reports false, and masks nothing, for
// a value shorter than the minimum length.
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
			m.replacer = nil
		}
	}
	return ok
}

// Mask returns s with every secret replaced by ***.
func (m *Masker) Mask(s string) string {
	if m == nil {
		return s
	}
	m.mu.RLock()
	r := m.replacer
	n := len(m.values)
	m.mu.RUnlock()
	if n == 0 {
		return s
	}
	if r == nil {
		r = m.build()
	}
	return r.Replace(s)
}

func (m *Masker) build() *strings.Replacer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.replacer != nil {
		return m.replacer
	}
	// Longest first, so that a secret containing another is masked whole.
	vals := make([]string, 0, len(m.values))
	for v := range m.values {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool {
		if len(vals[i]) != len(vals[j]) {
			return len(vals[i]) > len(vals[j])
		}
		return vals[i] < vals[j]
	})
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, "***")
	}
	m.replacer = strings.NewReplacer(pairs...)
	return m.replacer
}
