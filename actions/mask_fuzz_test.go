package actions

import (
	"strings"
	"testing"
	"time"

	"github.com/nixflow/nixflow/internal/eventtest"
)

// FuzzMaskedLines checks the masking line writer on arbitrary output,
// secrets and write boundaries: no secret ever shows in what it passes on,
// however the bytes were split across writes, and splitting changes
// nothing.
func FuzzMaskedLines(f *testing.F) {
	f.Add("token=supersecret\nnext line\n", "supersecret", "cdefgh", uint16(7), uint16(3))
	f.Add("abcdefgh and abcd\n", "abcd", "cdefgh", uint16(2), uint16(5))
	f.Add("héllo wörld sécrét\n", "sécrét", "wörl", uint16(1), uint16(9))
	f.Add("no newline at the end secret", "secret", "the end", uint16(4), uint16(4))
	f.Fuzz(func(t *testing.T, out, secret1, secret2 string, cut1, cut2 uint16) {
		m := NewMasker()
		var secrets []string
		for _, s := range []string{secret1, secret2} {
			// A secret is one line, at least minSecretLen long; '*' is
			// left out so that the mask itself cannot spell a secret.
			if len(s) >= minSecretLen && !strings.ContainsAny(s, "\n\r*") && strings.TrimSpace(s) != "" {
				m.Add(s)
				secrets = append(secrets, s)
			}
		}
		whole := writeLines(m, out, nil)
		split := writeLines(m, out, []int{int(cut1), int(cut2)})
		if strings.Join(whole, "\n") != strings.Join(split, "\n") {
			t.Fatalf("splitting the writes changed the output:\nwhole %q\nsplit %q", whole, split)
		}
		for _, line := range whole {
			for _, s := range secrets {
				if strings.Contains(line, s) {
					t.Fatalf("secret %q shows in %q", s, line)
				}
			}
		}
		if len(secrets) == 0 {
			want := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if out == "" {
				want = nil
			}
			for i := range want {
				want[i] = strings.TrimSuffix(want[i], "\r")
				if len(want[i]) > maxLine {
					t.Skip("long lines are cut; covered by TestLineWriter")
				}
			}
			if strings.Join(want, "\n") != strings.Join(whole, "\n") {
				t.Fatalf("without secrets the output changed:\nin  %q\nout %q", want, whole)
			}
		}
	})
}

// writeLines passes out through a masking line writer in pieces cut at the
// given offsets, and returns the lines it emits.
func writeLines(m *Masker, out string, cuts []int) []string {
	c := &eventtest.Recorder{}
	w := &lineWriter{sink: c, mask: m, tail: &tail{}, now: time.Now}
	rest := out
	for _, cut := range cuts {
		if len(rest) == 0 {
			break
		}
		cut %= len(rest) + 1
		w.Write([]byte(rest[:cut]))
		rest = rest[cut:]
	}
	w.Write([]byte(rest))
	w.Close()
	return c.Messages()
}
