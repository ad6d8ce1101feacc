package actions

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type collect struct {
	mu    sync.Mutex
	lines []string
}

func (c *collect) Emit(events ...Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range events {
		c.lines = append(c.lines, e.Message)
	}
}

func TestLineWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"one line", []string{"hello\n"}, []string{"hello"}},
		{"split across writes", []string{"hel", "lo\nwor", "ld\n"}, []string{"hello", "world"}},
		{"last line without newline", []string{"a\nb"}, []string{"a", "b"}},
		{"empty lines kept", []string{"\n\nx\n"}, []string{"", "", "x"}},
		{"crlf", []string{"a\r\n"}, []string{"a"}},
		{"secret split across writes", []string{"token=sup", "er-secret-value end\n"}, []string{"token=*** end"}},
		{"long line cut", []string{strings.Repeat("x", maxLine+10) + "\n"}, []string{strings.Repeat("x", maxLine), strings.Repeat("x", 10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &collect{}
			m := NewMasker()
			m.Add("super-secret-value")
			w := &lineWriter{sink: c, mask: m, tail: &tail{}, now: time.Now}
			for _, s := range tt.writes {
				w.Write([]byte(s))
			}
			w.Close()
			if diff := cmp.Diff(tt.want, c.lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTail(t *testing.T) {
	var tl tail
	for i := 0; i < tailLines+5; i++ {
		tl.add(strings.Repeat("x", i))
	}
	got := tl.get()
	if len(got) != tailLines || got[0] != strings.Repeat("x", 5) || got[tailLines-1] != strings.Repeat("x", tailLines+4) {
		t.Errorf("tail = %q", got)
	}
	var short tail
	short.add("a")
	short.add("b")
	if diff := cmp.Diff([]string{"a", "b"}, short.get()); diff != "" {
		t.Error(diff)
	}
}

func TestMasker(t *testing.T) {
	m := NewMasker()
	if m.Add("abc") {
		t.Error("a 3-character secret was accepted")
	}
	m.Add("secret")
	m.Add("secret-longer")
	m.Add("line one\nline two")
	m.Add("abcd")
	m.Add("cdefgh")
	for in, want := range map[string]string{
		"no sec-rets here":                   "no sec-rets here",
		"substrings are masked too: secrets": "substrings are masked too: ***s",
		"abc is too short to mask":           "abc is too short to mask",
		"x secret y":                         "x *** y",
		"secret-longer":                      "***",
		"secretsecret":                       "***",
		"line one then line two":             "*** then ***",
	} {
		if got := m.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}
