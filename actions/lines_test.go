package actions

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/internal/eventtest"
)

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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &eventtest.Recorder{}
			m := NewMasker()
			m.Add("super-secret-value")
			w := &lineWriter{sink: c, mask: m, tail: &tail{}, now: time.Now}
			for _, s := range tt.writes {
				w.Write([]byte(s))
			}
			w.Close()
			if diff := cmp.Diff(tt.want, c.Messages()); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLineWriterLongLines checks how over-long lines are cut: nothing is
// lost, no piece is longer than maxLine, and a secret is never split
// between two pieces, wherever it falls.
func TestLineWriterLongLines(t *testing.T) {
	const secret = "super-secret-value"
	for _, at := range []int{0, maxLine - 30, maxLine - len(secret) - 1, maxLine - len(secret), maxLine - 9, maxLine - 1, maxLine, maxLine + 5} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			line := strings.Repeat("x", at) + secret + strings.Repeat("y", 70000)
			c := &eventtest.Recorder{}
			m := NewMasker()
			m.Add(secret)
			w := &lineWriter{sink: c, mask: m, tail: &tail{}, now: time.Now}
			// One byte short of a whole write, then the rest, then a newline.
			w.Write([]byte(line[:len(line)/2]))
			w.Write([]byte(line[len(line)/2:]))
			w.Write([]byte("\n"))
			w.Close()
			if len(c.Messages()) < 2 {
				t.Fatalf("a %d-byte line was not cut: %d pieces", len(line), len(c.Messages()))
			}
			joined := strings.Join(c.Messages(), "")
			if want := strings.Replace(line, secret, "***", 1); joined != want {
				t.Errorf("pieces do not add up to the masked line (got %d bytes, want %d)", len(joined), len(want))
			}
			for i, piece := range c.Messages() {
				if len(piece) > maxLine {
					t.Errorf("piece %d is %d bytes, more than %d", i, len(piece), maxLine)
				}
				if strings.Contains(piece, "super") || strings.Contains(piece, "value") {
					t.Errorf("piece %d shows part of the secret", i)
				}
			}
		})
	}
}

// TestLineWriterLongSecrets: a secret longer than half a piece, wherever
// it falls in a line longer than a piece (across the cut, at the start of
// the rest after a cut, far past the first piece), never shows, not even
// in part, and the pieces still add up to the masked line.
func TestLineWriterLongSecrets(t *testing.T) {
	secret := strings.Repeat("0123456789abcdef", 40*1024/16) // 40 KiB
	for _, at := range []int{0, 1, 10000, 30000, maxLine - 100, maxLine - len(secret)/2, maxLine, 100000} {
		for _, writes := range []int{1, 3, 1000} {
			t.Run(fmt.Sprintf("at%d/writes%d", at, writes), func(t *testing.T) {
				line := strings.Repeat("x", at) + secret + strings.Repeat("y", 70000)
				c := &eventtest.Recorder{}
				m := NewMasker()
				m.Add(secret)
				w := &lineWriter{sink: c, mask: m, tail: &tail{}, now: time.Now}
				step := len(line)/writes + 1
				for i := 0; i < len(line); i += step {
					w.Write([]byte(line[i:min(i+step, len(line))]))
				}
				w.Write([]byte("\n"))
				w.Close()
				joined := strings.Join(c.Messages(), "")
				if want := strings.Replace(line, secret, "***", 1); joined != want {
					t.Errorf("pieces do not add up to the masked line (got %d bytes, want %d)", len(joined), len(want))
				}
				for i, piece := range c.Messages() {
					if strings.Contains(piece, "0123456") || strings.Contains(piece, "9abcdef") {
						t.Errorf("piece %d shows part of the secret", i)
					}
				}
			})
		}
	}
}

// TestMaskerConcurrent adds secrets while other goroutines mask: every
// secret known before masking started must always be masked.
func TestMaskerConcurrent(t *testing.T) {
	m := NewMasker()
	for i := 0; i < 8; i++ {
		m.Add(fmt.Sprintf("base-secret-%02d", i))
	}
	done := make(chan struct{})
	leaks := make(chan string, 1)
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if out := m.Mask("x base-secret-03 y base-secret-07 z"); strings.Contains(out, "base-secret") {
					select {
					case leaks <- out:
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		m.Add(fmt.Sprintf("added-secret-%04d", i))
	}
	close(done)
	wg.Wait()
	select {
	case out := <-leaks:
		t.Fatalf("a known secret was not masked while others were added: %q", out)
	default:
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
	if !m.Add("{\n  \"key\": \"json-value\"\n}") {
		t.Error("a value with lines too short to mask, and one to mask, was refused")
	}
	if m.Add("ab\n  \ncd") {
		t.Error("a value of short lines alone was accepted")
	}
	m.Add("  token-with-blanks \t")
	for in, want := range map[string]string{
		`{ "key": "json-value" }`:            "{ *** }",
		"t=token-with-blanks|":               "t=***|",
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

// TestLineWriterLongAnnouncement: a ::add-mask:: line longer than a piece
// of a long line is never passed on in pieces, whichever writes it comes
// in (the executor shows each write to LookAhead first): it is announced
// whole, and its value masked from then on. One longer than maxAnnounce
// before its newline comes is shown as announced, its value not at all.
func TestLineWriterLongAnnouncement(t *testing.T) {
	v := strings.Repeat("s3cr3t-", 10000) // 70,000 bytes
	huge := strings.Repeat("h", maxAnnounce+10)
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"two writes, the first shorter than a piece", []string{addMask + v[:40000], v[40000:] + "\n", "print: " + v + "\n"},
			[]string{addMask + "***", "print: ***"}},
		{"two writes, the first longer than a piece", []string{addMask + v[:69000], v[69000:] + "\n", "print: " + v + "\n"},
			[]string{addMask + "***", "print: ***"}},
		{"blanks before, split inside the prefix", []string{"  ::add-", "mask::" + v + "\n", v + "\n"},
			[]string{addMask + "***", "***"}},
		{"white space of any kind before it", []string{"\v\f" + strings.Repeat(" ", 60) + addMask + v[:69000], v[69000:] + "\n", "print: " + v + "\n"},
			[]string{addMask + "***", "print: ***"}},
		{"longer than maxAnnounce before its newline", []string{addMask + huge[:maxAnnounce/2], huge[maxAnnounce/2:], "\nafter\n"},
			[]string{addMask + "*** (a value longer than 1 MiB: not masked)", "after"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &eventtest.Recorder{}
			m := NewMasker()
			w := &lineWriter{sink: c, mask: m, tail: &tail{}, now: time.Now, announce: func(v string) { m.Add(v) }}
			for _, s := range tt.writes {
				w.LookAhead([]byte(s))
				w.Write([]byte(s))
			}
			w.Close()
			if diff := cmp.Diff(tt.want, c.Messages()); diff != "" {
				t.Errorf("lines (-want +got):\n%.2000s", diff)
			}
		})
	}
}

// TestLineWriterCutInsideChain: a secret that overlaps itself
// ("XyXyXyXy") makes one masked run of a line of "Xy"s; where the run
// reaches past a piece's end, the next piece masks its continuation: no
// part of the secret shows, whatever the line's length and its first
// piece's end.
func TestLineWriterCutInsideChain(t *testing.T) {
	for _, n := range []int{32766, 32768, 32771, 32772, 32775, 32776, 65600} {
		for _, prefix := range []string{"", "a", "ab "} {
			line := prefix + strings.Repeat("Xy", n)
			c := &eventtest.Recorder{}
			m := NewMasker()
			m.Add("XyXyXyXy")
			w := &lineWriter{sink: c, mask: m, tail: &tail{}, now: time.Now}
			w.Write([]byte(line + "\nafter Xy\n"))
			w.Close()
			msgs := c.Messages()
			if got := msgs[len(msgs)-1]; got != "after Xy" {
				t.Errorf("n %d, prefix %q: the next line is %q", n, prefix, got)
			}
			shown := strings.ReplaceAll(strings.Join(msgs[:len(msgs)-1], ""), "***", "")
			if shown != prefix {
				t.Errorf("n %d, prefix %q: %q shows besides the prefix", n, prefix, strings.TrimPrefix(shown, prefix))
			}
		}
	}
}

// TestLookAheadAfterDroppedAnnouncement: once an announcement too long to
// hold is being dropped, LookAhead still sees the announcements after the
// dropped line's newline in the same chunk, before that chunk is written
// (the other stream may name the value next).
func TestLookAheadAfterDroppedAnnouncement(t *testing.T) {
	huge := strings.Repeat("h", maxAnnounce+10)
	c := &eventtest.Recorder{}
	m := NewMasker()
	w := &lineWriter{sink: c, mask: m, tail: &tail{}, now: time.Now, announce: func(v string) { m.Add(v) }}
	for _, s := range []string{addMask + huge[:maxAnnounce/2], huge[maxAnnounce/2:]} {
		w.LookAhead([]byte(s))
		w.Write([]byte(s))
	}
	last := "BBBB\n::add-mask::fresh-value\n"
	w.LookAhead([]byte(last))
	if got := m.Mask("fresh-value"); got != "***" {
		t.Errorf("after LookAhead, fresh-value masks as %q, want ***", got)
	}
	w.Write([]byte(last))
	w.Close()
}

// TestLineWriterAnnouncementAfterCutLine: the tail of a cut line is not an
// announcement, whatever it holds, and the lines after it are read as
// usual: an announcement there is honoured.
func TestLineWriterAnnouncementAfterCutLine(t *testing.T) {
	c := &eventtest.Recorder{}
	m := NewMasker()
	m.Add("some-secret") // the cut keeps the end of a piece only when there are secrets
	w := &lineWriter{sink: c, mask: m, tail: &tail{}, now: time.Now, announce: func(v string) { m.Add(v) }}
	long := strings.Repeat("a", maxLine) + addMask + strings.Repeat("h", maxAnnounce+10)
	for _, s := range []string{long[:maxLine+50], long[maxLine+50:], "\n" + addMask + "hunter2222\nthe password is hunter2222\n"} {
		w.LookAhead([]byte(s))
		w.Write([]byte(s))
	}
	w.Close()
	msgs := c.Messages()
	if diff := cmp.Diff([]string{addMask + "***", "the password is ***"}, msgs[len(msgs)-2:]); diff != "" {
		t.Errorf("the last lines (-want +got):\n%s", diff)
	}
}

// TestLineWriterCutWholeCharacters: a line longer than a piece is cut
// between UTF-8 characters, never inside one, so that each piece (a JSON
// event, a line of the log) shows the text and not U+FFFD halves.
func TestLineWriterCutWholeCharacters(t *testing.T) {
	for _, prefix := range []string{"x", "xy", "xyz", ""} {
		for _, char := range []string{"é", "€", "😀"} {
			line := prefix + strings.Repeat(char, 3*maxLine/len(char))
			c := &eventtest.Recorder{}
			w := &lineWriter{sink: c, mask: NewMasker(), tail: &tail{}, now: time.Now}
			w.Write([]byte(line + "\n"))
			w.Close()
			got := c.Messages()
			if len(got) < 3 {
				t.Fatalf("%q: %d pieces, want at least 3", prefix+char, len(got))
			}
			for i, piece := range got {
				if !utf8.ValidString(piece) {
					t.Errorf("%q: piece %d of %d is cut inside a character", prefix+char, i, len(got))
				}
			}
			if strings.Join(got, "") != line {
				t.Errorf("%q: the pieces do not make the line", prefix+char)
			}
		}
	}
}
