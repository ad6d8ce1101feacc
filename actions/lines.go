package actions

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// maxLine bounds how much of one line is buffered; a longer line is passed
// on in pieces of this size.
const maxLine = 64 * 1024

// tailLines is how many of a step's last lines are kept for the summary.
const tailLines = 20

// lineWriter turns a stream of bytes into events, one per line, masking
// secrets line by line. A last line without a newline is passed on by
// Close. It is safe for one writer; the tail it keeps is shared by a
// step's two streams and guarded by their common lock.
type lineWriter struct {
	sink Sink
	mask *Masker
	// announce, if set, receives the value of a ::add-mask::VALUE line;
	// it is masked from that line on, the very next line included.
	announce func(value string)
	tmpl     Event
	buf      []byte
	tail     *tail
	now      func() time.Time
	events   []Event
	// stamp is the time of the lines of the current write: the time
	// they were read.
	stamp time.Time
}

// Write passes on the lines of p. In the steady state (lines shorter
// than maxLine, no secret in them) it allocates one string for all the
// complete lines of p, whose events share it, and reads the clock once.
func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.events = w.events[:0]
	w.stamp = w.now()
	for len(p) > 0 {
		if len(w.buf) == 0 {
			if k := w.whole(p); k > 0 {
				p = p[k:]
				continue
			}
		}
		i := bytes.IndexByte(p, '\n')
		end := i
		if i < 0 {
			end = len(p)
		}
		// A line is passed on in pieces of maxLine bytes, but the buffer
		// holds a secret's length more: a secret that starts in a piece
		// is then whole in the buffer, and masked, before the cut.
		if room := maxLine + w.mask.longest() - len(w.buf); end > room {
			// Too long for one line: pass on a piece, go on with the rest.
			w.buf = append(w.buf, p[:room]...)
			p = p[room:]
			w.cut()
			continue
		}
		if i < 0 {
			w.buf = append(w.buf, p...)
			break
		}
		if len(w.buf) > 0 {
			w.buf = append(w.buf, p[:i]...)
			w.line()
		} else {
			w.add(string(p[:i]))
		}
		p = p[i+1:]
	}
	w.flush()
	return n, nil
}

// LookAhead implements executors.LookAhead: it announces the values of
// the complete ::add-mask:: lines in p (with what is buffered before
// it), before the executor writes any output read with them. Values too
// short to mask are left to add, which warns about them once.
func (w *lineWriter) LookAhead(p []byte) {
	if w.announce == nil || !bytes.Contains(p, []byte(addMask)) {
		return
	}
	data := append(append([]byte(nil), w.buf...), p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return
		}
		line := strings.TrimSpace(string(data[:i]))
		data = data[i+1:]
		if v, ok := strings.CutPrefix(line, addMask); ok {
			if v = strings.TrimSpace(v); len(v) >= minSecretLen {
				w.announce(v)
			}
		}
	}
}

// whole passes on the complete lines at the start of p that are short
// enough to need no cut, from one string, and returns how many bytes of
// p they took.
func (w *lineWriter) whole(p []byte) int {
	last := bytes.LastIndexByte(p, '\n')
	if last < 0 {
		return 0
	}
	s := string(p[:last+1])
	room := maxLine + w.mask.longest()
	used := 0
	for used < len(s) {
		i := strings.IndexByte(s[used:], '\n')
		if i > room {
			break
		}
		w.add(s[used : used+i])
		used += i + 1
	}
	return used
}

func (w *lineWriter) line() {
	w.add(string(w.buf))
	w.buf = w.buf[:0]
}

// cut passes on the first part of an over-long line, masked as a whole
// before it is cut, and cut where no secret's occurrence straddles the
// cut (which would show both halves).
func (w *lineWriter) cut() {
	text, n := w.mask.maskPrefix(string(w.buf), maxLine)
	w.emit(text)
	w.buf = append(w.buf[:0], w.buf[n:]...)
}

// addMask starts a line that announces a value to mask.
const addMask = "::add-mask::"

func (w *lineWriter) add(line string) {
	raw := strings.TrimSuffix(line, "\r")
	var text string
	if v, ok := strings.CutPrefix(strings.TrimSpace(raw), addMask); ok && w.announce != nil {
		if v = strings.TrimSpace(v); v != "" {
			w.announce(v)
		}
		text = addMask + "***"
	} else {
		text = w.mask.Mask(raw)
	}
	w.emit(text)
}

// emit passes on one masked line.
func (w *lineWriter) emit(text string) {
	e := w.tmpl
	e.Time = w.stamp
	e.Message = text
	w.events = append(w.events, e)
}

// flush emits the lines of a write, and keeps the last of them in the
// tail, as copies: a line may share its memory with the whole write.
func (w *lineWriter) flush() {
	if len(w.events) > 0 {
		w.sink.Emit(w.events...)
		for _, e := range w.events[max(0, len(w.events)-tailLines):] {
			w.tail.add(strings.Clone(e.Message))
		}
		w.events = w.events[:0]
	}
}

// Close passes on a last line that had no newline.
func (w *lineWriter) Close() error {
	if len(w.buf) > 0 {
		w.stamp = w.now()
		w.line()
		w.flush()
	}
	return nil
}

// tail keeps the last lines of a step's output.
type tail struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lines == nil {
		t.lines = make([]string, tailLines)
	}
	t.lines[t.next] = line
	t.next = (t.next + 1) % tailLines
	t.full = t.full || t.next == 0
}

func (t *tail) get() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.full {
		return append([]string(nil), t.lines[:t.next]...)
	}
	return append(append([]string(nil), t.lines[t.next:]...), t.lines[:t.next]...)
}
