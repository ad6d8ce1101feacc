package local

import (
	"slices"
	"sync"
	"syscall"

	"github.com/nixflow/nixflow/executors"
)

// A step's two output pipes are read by two goroutines, so what it wrote
// to stdout and then to stderr may reach the writers in either order. The
// runner needs one guarantee from that order: a value announced with
// ::add-mask:: on one stream is masked on the other from the next line
// on. So the copiers share a lock, and a copier that read a chunk also
// takes whatever the other pipe holds at that moment (which includes
// everything the step wrote there before the chunk), shows all of it to
// writers that implement executors.LookAhead, and only then passes it
// on. Without this, a secret printed on stderr just after its
// announcement on stdout leaked in a third of the runs.

// streamSet links the outputs of one step.
type streamSet struct {
	mu sync.Mutex
	// outs are a step's stdout and stderr, at most.
	outs []*output
}

// linkStreams makes the outputs of one step read under one lock.
func linkStreams(outs ...*output) {
	s := &streamSet{}
	for _, o := range outs {
		if o.r == nil {
			continue
		}
		rc, err := o.r.SyscallConn()
		if err != nil {
			continue // copied on its own, as before
		}
		o.set, o.rc = s, rc
		s.outs = append(s.outs, o)
	}
}

// copyLinked is output.copy for linked outputs: it reads through the
// pipe's raw connection, so that the read and what follows it happen
// under the set's lock.
func (o *output) copyLinked() {
	defer close(o.done)
	buf := make([]byte, copyBufferSize)
	for {
		eof := false
		rerr := o.rc.Read(func(fd uintptr) bool {
			o.set.mu.Lock()
			defer o.set.mu.Unlock()
			n, err := readRetry(int(fd), buf)
			if err == syscall.EAGAIN {
				return false
			}
			if n <= 0 {
				eof = true
				return true
			}
			o.set.passOn(o, buf[:n])
			if n == len(buf) && len(buf) < readSize {
				buf = make([]byte, 2*len(buf))
			}
			return true
		})
		if rerr != nil || eof {
			return
		}
	}
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
// forever. It is at least all that a pipe holds (pipeSize), so that
// everything the pipes held when the chunk was read is taken, whatever
// the chunk's size and whichever pipe it came from.
const maxHold = 1 << 20

// passOn passes on chunk, just read from o, with what the pipes of the
// step hold then: it reads every pipe again until none has anything
// left, so that what it holds is everything the step wrote up to a
// moment (a value announced before a line is then held with it, on
// whichever stream). Every writer that looks ahead sees all of it, then
// all of it is written. The caller holds s.mu.
func (s *streamSet) passOn(o *output, chunk []byte) {
	for _, x := range s.outs {
		x.pending = x.pending[:0]
	}
	o.pending = append(o.pending, chunk...)
	// Each pipe has a budget of its own: the reader's own pipe, still
	// full, does not use up the other's.
	var held [2]int // by s.outs
	for {
		got := 0
		for i, x := range s.outs {
			if !x.closed && held[i] < maxHold {
				n := x.take(maxHold - held[i])
				held[i] += n
				got += n
			}
		}
		if got == 0 {
			break
		}
	}
	for _, x := range s.outs {
		if len(x.pending) >= growAt && !x.grown {
			_ = x.rc.Control(func(fd uintptr) { x.grown = growPipe(fd) })
		}
		if la, ok := x.dst.(executors.LookAhead); ok && len(x.pending) > 0 {
			la.LookAhead(x.pending)
		}
	}
	o.write(o.pending)
	o.pending = o.pending[:0]
	for _, x := range s.outs {
		if len(x.pending) > 0 {
			x.write(x.pending)
			x.pending = x.pending[:0]
		}
	}
}

// take appends to x.pending what its pipe holds, up to limit bytes, and
// returns how much. It reads the pipe's descriptor directly: the
// output's own copier may be waiting on it, but reads only under the
// set's lock, which the caller holds.
func (x *output) take(limit int) int {
	n0 := len(x.pending)
	_ = x.rc.Control(func(fd uintptr) {
		for len(x.pending)-n0 < limit {
			if len(x.pending) == cap(x.pending) {
				x.pending = slices.Grow(x.pending, min(limit, readSize))
			}
			room := x.pending[len(x.pending):min(cap(x.pending), len(x.pending)+limit-(len(x.pending)-n0))]
			n, err := readRetry(int(fd), room)
			if n <= 0 || err != nil {
				return
			}
			x.pending = x.pending[:len(x.pending)+n]
		}
	})
	return len(x.pending) - n0
}

// write passes data on; after a write error it drops it, so that the
// step does not block on a full pipe.
func (o *output) write(data []byte) {
	if o.err == nil {
		_, o.err = o.dst.Write(data)
	}
}
