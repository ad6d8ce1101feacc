package actions

import (
	"bytes"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/nixflow/nixflow/event"
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
	sink event.Sink
	mask *Masker
	// announce, if set, receives the value of a ::add-mask::VALUE line;
	// it is masked from that line on, the very next line included.
	announce func(value string)
	tmpl     event.Event
	buf      []byte
	tail     *tail
	now      func() time.Time
	events   []event.Event
	// stamp is the time of the lines of the current write: the time
	// they were read.
	stamp time.Time
	// block1 (the event each line of a block is), joined, masked and
	// spans are the block path's, kept to be reused.
	block1 event.Event
	joined []byte
	masked []byte
	spans  []span
	// dropping: the rest of the current line is an announced value too
	// long to hold (maxAnnounce), passed on as nothing.
	dropping bool
	// ctx is the end of the last piece passed on of a line being cut
	// (see Masker.maskPrefix), empty between lines.
	ctx string
}

// maxAnnounce bounds how much of a ::add-mask:: line is held until its
// newline: such a line is never passed on in pieces, which would show
// the value. A longer one is shown as announced, its value neither
// shown nor masked.
const maxAnnounce = 1 << 20

// Write passes on the lines of p. In the steady state (lines shorter
// than maxLine, none announcing a secret, no '\r') it passes on the
// complete lines of p as one block, without allocating, and reads the
// clock once; else it allocates one string for all the complete lines of
// p, whose events share it.
func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.events = w.events[:0]
	w.stamp = w.now()
	for len(p) > 0 {
		if w.dropping {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				break
			}
			p, w.dropping = p[i+1:], false
			continue
		}
		if len(w.buf) > 0 && w.ctx == "" {
			if k := w.joinBlock(p); k > 0 {
				p = p[k:]
				continue
			}
		}
		if len(w.buf) == 0 && w.ctx == "" {
			if k := w.block(p); k > 0 {
				p = p[k:]
				continue
			}
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
		room := maxLine + w.mask.longest() - len(w.buf)
		if end > room && w.announce != nil && w.ctx == "" && announcing(w.buf, p) {
			// An announcement is held whole, up to maxAnnounce.
			if len(w.buf)+end > maxAnnounce {
				w.buf = w.buf[:0]
				w.emit(addMask + "*** (a value longer than 1 MiB: not masked)")
				w.dropping = true
				continue
			}
			w.buf = append(w.buf, p[:end]...)
			p = p[end:]
			if i >= 0 {
				p = p[1:]
				w.line()
			}
			continue
		}
		if end > room {
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
	buf := w.buf
	if w.dropping {
		// The rest of the dropped line is not looked at.
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return
		}
		buf, p = nil, p[i+1:]
	}
	if w.announce == nil || (!bytes.Contains(p, []byte(addMask)) && !announcing(buf, p)) {
		return
	}
	data := append(append([]byte(nil), buf...), p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return
		}
		v, ok := announcement(string(data[:i]))
		data = data[i+1:]
		if ok && len(v) >= minSecretLen {
			w.announce(v)
		}
	}
}

// block passes on the complete lines at the start of p as one block
// when none of them needs work of its own: none to cut, none announcing
// a secret, none ending in "\r\n". It returns how many bytes of p it
// took, 0 if p needs the line by line path.
func (w *lineWriter) block(p []byte) int {
	last := bytes.LastIndexByte(p, '\n')
	if last < 0 {
		return 0
	}
	p = p[:last+1]
	if bytes.IndexByte(p, '\r') >= 0 || bytes.Contains(p, []byte(addMask)) {
		return 0
	}
	// Every line fits in room if every room+1 bytes from a line's start
	// hold a newline: a few look-ups per block.
	room := maxLine + w.mask.longest()
	for at := 0; len(p)-at > room; {
		i := bytes.LastIndexByte(p[at:at+room+1], '\n')
		if i < 0 {
			return 0
		}
		at += i + 1
	}
	lines := w.mask.maskLines(p, &w.masked, &w.spans)
	w.flush()
	w.block1 = w.tmpl
	w.block1.Time = w.stamp
	event.EmitOutput(w.sink, &w.block1, lines)
	w.keepTail(lines)
	return len(p)
}

// joinBlock passes on the line held in w.buf, which p ends, with the
// complete lines after it as one block (see block), and returns how
// many bytes of p it took, 0 if they need the line by line path. A step
// printing fast has a line cut at the end of almost every read: it then
// costs one block, where it would cost an event, a string and a write
// of the console more. Only small blocks are joined (maxJoin): the copy
// of a large one would cost more than what it saves.
func (w *lineWriter) joinBlock(p []byte) int {
	last := bytes.LastIndexByte(p, '\n')
	if last < 0 || len(w.buf)+last+1 > maxJoin {
		return 0
	}
	w.joined = append(append(w.joined[:0], w.buf...), p[:last+1]...)
	if w.block(w.joined) == 0 {
		return 0
	}
	w.buf = w.buf[:0]
	return last + 1
}

// maxJoin bounds the blocks joinBlock copies, and so its buffer.
const maxJoin = 64 << 10

// keepTail keeps the last lines of a block in the tail.
func (w *lineWriter) keepTail(lines []byte) {
	start := len(lines) - 1 // the last newline
	for k := 0; k < tailLines && start >= 0; k++ {
		start = bytes.LastIndexByte(lines[:start], '\n')
	}
	start++ // after a newline, or 0
	for rest := lines[start:]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		addTail(w.tail, rest[:i])
		rest = rest[i+1:]
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
	text, n := w.mask.maskPrefix(w.ctx, string(w.buf), maxLine)
	w.emit(text)
	keep := max(w.mask.longest()-1, 0)
	w.ctx = string(w.buf[max(n-keep, 0):n])
	w.buf = append(w.buf[:0], w.buf[n:]...)
}

// addMask starts a line that announces a value to mask.
const addMask = "::add-mask::"

// announcement reports whether line announces a value with ::add-mask::
// (after white space), and returns the value, white space around it
// removed.
func announcement(line string) (string, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(line), addMask)
	return strings.TrimSpace(v), ok
}

// announcing tells whether the line that buf (what is held of it) and p
// continue starts with addMask, after white space (as add sees it).
func announcing(buf, p []byte) bool {
	rest := bytes.TrimLeftFunc(buf, unicode.IsSpace)
	switch {
	case len(rest) == 0:
		rest = bytes.TrimLeftFunc(p, unicode.IsSpace)
	case len(rest) < len(addMask):
		rest = append(rest[:len(rest):len(rest)], p[:min(len(p), len(addMask))]...)
	}
	return bytes.HasPrefix(rest, []byte(addMask))
}

func (w *lineWriter) add(line string) {
	raw := strings.TrimSuffix(line, "\r")
	var text string
	if w.ctx != "" {
		// The last piece of a line that was cut.
		text, w.ctx = w.mask.maskAfter(w.ctx, raw), ""
	} else if v, ok := announcement(raw); ok && w.announce != nil {
		if v != "" {
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
// tail.
func (w *lineWriter) flush() {
	if len(w.events) > 0 {
		w.sink.Emit(w.events...)
		for _, e := range w.events[max(0, len(w.events)-tailLines):] {
			addTail(w.tail, e.Message)
		}
		w.events = w.events[:0]
	}
}

// Close passes on a last line that had no newline.
func (w *lineWriter) Close() error {
	w.dropping = false
	if len(w.buf) > 0 {
		w.stamp = w.now()
		w.line()
		w.flush()
	}
	w.ctx = ""
	return nil
}

// tail keeps the last lines of a step's output, in buffers it reuses:
// keeping them costs no allocation in the steady state.
type tail struct {
	mu    sync.Mutex
	lines [][]byte
	next  int
	full  bool
}

func (t *tail) add(line string) { addTail(t, line) }

// addTail is tail.add for a line of either type.
func addTail[T string | []byte](t *tail, line T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lines == nil {
		t.lines = make([][]byte, tailLines)
	}
	t.lines[t.next] = append(t.lines[t.next][:0], line...)
	t.next = (t.next + 1) % tailLines
	t.full = t.full || t.next == 0
}

func (t *tail) get() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	if t.full {
		for _, l := range t.lines[t.next:] {
			out = append(out, string(l))
		}
	}
	for _, l := range t.lines[:t.next] {
		out = append(out, string(l))
	}
	return out
}
