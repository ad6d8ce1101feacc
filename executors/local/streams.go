package local

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixflow/nixflow/executors"
)

// A step's two output pipes are read one after the other, so what it
// wrote to stdout and then to stderr may reach the writers in either
// order. The runner needs one guarantee from that order: a value
// announced with ::add-mask:: on one stream is masked on the other from
// the next line on. So the copier, having read a chunk from one pipe,
// also takes whatever the other pipe holds at that moment (which
// includes everything the step wrote there before the chunk), shows all
// of it to writers that implement executors.LookAhead, and only then
// passes it on. Without this, a secret printed on stderr just after its
// announcement on stdout leaked in a third of the runs. What a copier
// cannot be sure of (a pipe was left unread at its budget) it holds back
// for a later round.

// streamSet links the outputs of one step, and copies them.
//
// One goroutine per step (copy) waits for the step's pipes with poll(2),
// in the thread it runs on, and reads them. Go's poller is not told of
// the pipes: it would be woken for every write of a step printing fast
// (each a few KiB), and hand each wake-up from its thread to the
// copier's; waiting in poll(2) wakes the copier's own thread, once per
// read. A step printing a GB is passed on in 9-23% less time so (see
// docs/performance.md), at the cost of one thread per running step, as
// for the wait for its exit.
type streamSet struct {
	mu sync.Mutex
	// outs are a step's stdout and stderr, at most.
	outs []*output
	// clock counts the reads of the set's pipes: it orders them.
	clock uint64
	// wake, once written, tells the copier to stop; stop is set first.
	wake waker
	stop atomic.Bool
	// done is closed when the copier returns.
	done chan struct{}
}

// newStreamSet links the outputs of one step (those with a pipe).
func newStreamSet(outs ...*output) (*streamSet, error) {
	s := &streamSet{done: make(chan struct{})}
	for _, o := range outs {
		if o.w != nil {
			o.set = s
			s.outs = append(s.outs, o)
		}
	}
	if len(s.outs) == 0 {
		close(s.done)
		return s, nil
	}
	var err error
	if s.wake, err = newWaker(); err != nil {
		return nil, err
	}
	return s, nil
}

// abort closes the pipes of a step that did not start.
func (s *streamSet) abort() {
	for _, o := range s.outs {
		o.abort()
	}
	if len(s.outs) > 0 {
		s.wake.close()
	}
}

// start closes the parent's copy of each write end, so that a read end
// sees end of file once the step's processes are gone, and starts
// copying.
func (s *streamSet) start() {
	if len(s.outs) == 0 {
		return
	}
	for _, o := range s.outs {
		o.w.Close()
	}
	go s.copy()
}

// copy passes on what the step writes until every pipe reached end of
// file, or it is told to stop (finish).
func (s *streamSet) copy() {
	defer close(s.done)
	fds := make([]unix.PollFd, len(s.outs)+1)
	for i, o := range s.outs {
		fds[i] = unix.PollFd{Fd: int32(o.r), Events: unix.POLLIN}
	}
	fds[len(s.outs)] = unix.PollFd{Fd: int32(s.wake.fd()), Events: unix.POLLIN}
	buf := make([]byte, max(copyBufferSize, packetSize))
	open := len(s.outs)
	// read reads the pipes poll(2) found ready, or all that are open.
	read := func(all bool) {
		for i, o := range s.outs {
			if fds[i].Fd >= 0 && (all || fds[i].Revents != 0) && s.readAll(o, &buf) {
				fds[i].Fd = -1 // poll(2) leaves it out
				open--
			}
		}
	}
	for open > 0 && !s.stop.Load() {
		if s.holdingLocked() {
			// What is held back waits for a pipe found empty (see
			// passOn): look at every pipe before waiting.
			read(true)
			if open == 0 || s.stop.Load() {
				break
			}
		}
		if _, err := unix.Poll(fds, -1); err != nil {
			if err != unix.EINTR {
				// Out of memory in the kernel: try again soon.
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		read(false)
	}
}

// readAll reads o until its pipe is found empty, passing on each chunk
// read with what the step's pipes hold then (passOn), and tells whether
// o reached its end. A read that fills buf doubles it (see readSize).
func (s *streamSet) readAll(o *output, buf *[]byte) (ended bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.stop.Load() {
		n, err := readRetry(o.r, *buf)
		if err == syscall.EAGAIN {
			if s.holding() {
				// Held back until a pipe is found empty: this one
				// is, and the step may now be quiet.
				s.passOn(o, nil, true)
			}
			return false
		}
		if n <= 0 {
			o.eof = true
			if s.holding() {
				// What was held back may have waited on this
				// end only.
				s.passOn(o, nil, true)
			}
			return true
		}
		// A read that does not fill buf may still leave bytes in the
		// pipe (a step may have set O_DIRECT on its end: then a read
		// returns one write), so only a read that finds nothing tells
		// that the pipe is empty: passOn's, after the chunk.
		if s.passOn(o, (*buf)[:n], false) {
			return false
		}
		if n == len(*buf) && len(*buf) < readSize {
			*buf = make([]byte, 2*len(*buf))
		}
	}
	return false
}

// finish waits for the copier to reach the end of every pipe, or until
// timeout is closed, then stops it, passes on what the pipes still hold
// and closes them.
func (s *streamSet) finish(timeout <-chan struct{}) {
	if len(s.outs) == 0 {
		return
	}
	select {
	case <-s.done:
	case <-timeout:
		s.stop.Store(true)
		s.wake.wake()
		<-s.done
	}
	for _, o := range s.outs {
		s.close(o)
	}
	for _, o := range s.outs {
		syscall.Close(o.r)
		o.r = -1 // its number may serve another file from now on
		if o.grown {
			releasePipe()
			o.grown = false
		}
	}
	s.wake.close()
}

// readSize is the most a copier reads at once: all that a full grown pipe
// holds (pipeSize), so that a step printing fast is read in few system
// calls, each waking it once. A copier's buffer starts small
// (copyBufferSize) and doubles when a read fills it: a step printing
// little costs little memory.
const readSize = 1 << 20

// growAt is what a pipe must give in one round of passOn (all that the
// kernel's default pipe holds) to grow to pipeSize: its step writes
// faster than it is read.
const growAt = 64 << 10

// packetSize is the most a read of a packet pipe returns: a page (4 KiB
// on x86-64, 16 or 64 KiB on some arm64 kernels). A step makes its pipe
// one by setting O_DIRECT on its end (dd oflag=direct does): each write
// is then a packet of its own (split at a page), a read returns one, and
// what does not fit in the read is lost. So every read of a step's pipe
// has room for one.
var packetSize = max(4096, os.Getpagesize())

// readRetry is read(2), retried when a signal interrupts it.
func readRetry(fd int, buf []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, buf)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// maxHold bounds what passOn takes from each pipe besides the chunk it
// passes on: a step that never pauses writing must not make it read
// forever. It is at least all that a pipe holds (pipeSize, the most an
// unprivileged step can set), so that everything the pipes held when the
// chunk was read is taken, whatever the chunk's size and whichever pipe
// it came from; for larger pipes, safeEnd holds back what it must. (A
// pipe's take may end up to packetSize-1 bytes past it.)
const maxHold = 1 << 20

// passOn passes on chunk, just read from o (drained: o was then found
// empty), with what the pipes of the step hold then: it reads the pipes
// until each was found empty after the last byte read from another, so
// that what it holds is everything the step wrote up to a moment (a
// value announced before a line is then held with it, on whichever
// stream). Every writer that looks ahead sees all of it, then what is
// safe to write (safeEnd) is written. It tells whether o was found empty
// (or at its end) after the chunk. The caller holds s.mu.
func (s *streamSet) passOn(o *output, chunk []byte, drained bool) (oDrained bool) {
	// settled[i]: s.outs[i] was found empty since the last byte read
	// from another pipe, reached its end, or used up its budget.
	var settled [2]bool // by s.outs
	for i, x := range s.outs {
		settled[i] = x == o && drained
	}
	o.pending = append(o.pending, chunk...)
	if len(chunk) > 0 || drained {
		s.read(o, len(chunk), drained)
	}
	// Each pipe has a budget of its own: the reader's own pipe, still
	// full, does not use up the other's.
	var held [2]int // by s.outs
	for i := 0; !allSettled(settled[:len(s.outs)]); i = (i + 1) % len(s.outs) {
		x := s.outs[i]
		if settled[i] {
			continue
		}
		if x.ended() || held[i] >= maxHold {
			settled[i] = true
			continue
		}
		// take reads no less than a packet at a time, and leaves the
		// last packetSize-1 bytes of its limit: with this one it takes
		// at least all that is left of the budget.
		n, drained := x.take(maxHold - held[i] + packetSize - 1)
		s.read(x, n, drained)
		if afterTake != nil {
			afterTake(x)
		}
		held[i] += n
		settled[i] = drained
		if x == o {
			oDrained = drained
		}
		if n > 0 {
			// What another pipe held when these bytes were written
			// may not have been read.
			for j := range s.outs {
				settled[j] = settled[j] && j == i
			}
		}
	}
	for _, x := range s.outs {
		if len(x.pending) >= growAt && !x.grown {
			x.grown = growPipe(uintptr(x.r))
		}
		if la, ok := x.dst.(executors.LookAhead); ok && len(x.pending) > 0 {
			la.LookAhead(x.pending)
		}
	}
	s.writeSafe(o)
	for _, x := range s.outs {
		if x != o {
			s.writeSafe(x)
		}
	}
	return oDrained
}

// allSettled tells whether every pipe is settled, in passOn's sense.
func allSettled(settled []bool) bool {
	return !slices.Contains(settled, false)
}

// afterTake, if set, is called after each take of passOn: tests write
// into the pipes there, as a step writing on would.
var afterTake func(x *output)

// A pipe that used up its budget in passOn was left unread, so what was
// read from the other pipe after it was last found empty may have been
// written after an announcement still in it: the step writes on, and
// the other pipe is read later than the chunk. Such bytes are held back
// (in pending, with their marks) until it is known that every byte
// written before them was seen: that the other pipe was found empty
// since, or that all it can hold was read from it since.

// readMark records when the bytes of an output's pending up to end were
// read: at the set's clock at, when seen bytes had been read from each
// of the set's outputs.
type readMark struct {
	end  int
	at   uint64
	seen [2]int64 // by s.outs
}

// read records that n bytes were just read from x into x.pending, and
// whether x was then found empty (or at its end).
func (s *streamSet) read(x *output, n int, drained bool) {
	s.clock++
	if drained {
		x.drainedAt = s.clock
	}
	if n == 0 {
		return
	}
	x.total += int64(n)
	m := readMark{end: len(x.pending), at: s.clock}
	for i, y := range s.outs {
		m.seen[i] = y.total
	}
	x.marks = append(x.marks, m)
}

// safeEnd returns how much of x.pending is safe to write: every byte
// any step process wrote before it has been read.
func (s *streamSet) safeEnd(x *output) int {
	end := 0
	for _, m := range x.marks {
		for i, y := range s.outs {
			// (A pipe closed after the drain timeout may hold
			// what was never read.)
			if y == x || y.eof || y.drainedAt > m.at {
				continue
			}
			// y's pipe held at most its capacity when m's bytes were
			// read: all of that has been read once as much came since.
			if y.total-m.seen[i] < int64(y.capacity()) {
				return end
			}
		}
		end = m.end
	}
	return end
}

// writeSafe writes what is safe to write of x.pending, and keeps the
// rest for a later passOn.
func (s *streamSet) writeSafe(x *output) {
	end := s.safeEnd(x)
	if end == 0 {
		return
	}
	x.write(x.pending[:end])
	k := 0
	for k < len(x.marks) && x.marks[k].end <= end {
		k++
	}
	x.marks = x.marks[:copy(x.marks, x.marks[k:])]
	for i := range x.marks {
		x.marks[i].end -= end
	}
	x.pending = x.pending[:copy(x.pending, x.pending[end:])]
}

// close marks o closed, once what its pipe still holds is passed on.
func (s *streamSet) close(o *output) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !o.ended() {
		s.passOn(o, nil, false)
	}
	o.closed = true
}

// flush writes what passOn held back, once every copier of the set has
// returned: no more can be read. What is still not safe to write (the
// drain timed out on a pipe that something beyond reach kept writing
// into, so output the step wrote before it was never read) is not
// shown, and a line says how much.
func (s *streamSet) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.outs {
		s.writeSafe(x)
		if len(x.pending) == 0 {
			continue
		}
		var note []byte
		if x.midLine {
			note = append(note, '\n')
		}
		note = fmt.Appendf(note, "nixflow: %d bytes of output not shown: written after output that could not be read when the step ended\n", len(x.pending))
		x.write(note)
		x.pending, x.marks = x.pending[:0], x.marks[:0]
	}
}

// holdingLocked is holding for a caller without s.mu.
func (s *streamSet) holdingLocked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holding()
}

// holding tells whether passOn held anything back. The caller holds s.mu.
func (s *streamSet) holding() bool {
	for _, x := range s.outs {
		if len(x.pending) > 0 {
			return true
		}
	}
	return false
}

// ended tells whether nothing more can be read from x: its pipe reached
// end of file or was closed. The caller holds s.mu.
func (x *output) ended() bool { return x.eof || x.closed }

// capacity returns how much x's pipe can have held when any byte pending
// was read: its capacity now (the step may have raised it), and at least
// maxHold, all an unprivileged step can set (it may have lowered it).
func (x *output) capacity() int {
	if x.r < 0 {
		return maxHold // closed (finish): flush asks of what it held
	}
	return max(pipeCapacity(uintptr(x.r)), maxHold)
}

// take appends to x.pending what its pipe holds, up to limit bytes, and
// returns how much, and whether the pipe was found empty (or at its end)
// rather than the limit reached. The caller holds the set's lock.
func (x *output) take(limit int) (n int, drained bool) {
	n0 := len(x.pending)
	// A read is never smaller than a packet (a packet pipe drops what a
	// read leaves of its packet): the last packetSize-1 bytes of the
	// limit are not read.
	for limit-(len(x.pending)-n0) >= packetSize {
		want := limit - (len(x.pending) - n0)
		if cap(x.pending)-len(x.pending) < packetSize {
			// Grown by doubling: most pipes hold a little.
			x.pending = slices.Grow(x.pending, min(want, max(copyBufferSize, cap(x.pending))))
		}
		room := x.pending[len(x.pending):min(cap(x.pending), len(x.pending)+want)]
		n, err := readRetry(x.r, room)
		if n <= 0 || err != nil {
			return len(x.pending) - n0, true
		}
		x.pending = x.pending[:len(x.pending)+n]
	}
	drained = false
	return len(x.pending) - n0, drained
}

// write passes data on; after a write error it drops it, so that the
// step does not block on a full pipe.
func (o *output) write(data []byte) {
	if len(data) > 0 {
		o.midLine = data[len(data)-1] != '\n'
	}
	if o.err == nil {
		_, o.err = o.dst.Write(data)
	}
}
