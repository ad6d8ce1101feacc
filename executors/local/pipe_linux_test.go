package local

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPipeGrowsForFastSteps: a step's output pipe keeps the kernel's
// default size unless the step writes faster than it is read (a round of
// reads takes all the default pipe holds); then it grows to pipeSize, within a budget of
// maxGrownPipes given back when the output is finished. Every pipe grown
// at once would spend an unprivileged user's pipe budget and leave the
// user's other pipes, the steps' own `a | b` too, at 8 KiB.
func TestPipeGrowsForFastSteps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		written int   // before the copier starts
		taken   int32 // pipes already grown elsewhere
		want    int
	}{
		{name: "quiet", written: 100, want: 64 << 10},
		{name: "fast", written: 64 << 10, want: pipeSize},
		{name: "fast, budget spent", written: 64 << 10, taken: maxGrownPipes, want: 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grownPipes.Store(tc.taken)
			defer grownPipes.Store(0)
			var got bytes.Buffer
			o, err := newOutput(&got)
			if err != nil {
				t.Fatal(err)
			}
			s, err := newStreamSet(o)
			if err != nil {
				t.Fatal(err)
			}
			size := func() int {
				t.Helper()
				n, err := unix.FcntlInt(uintptr(o.r), unix.F_GETPIPE_SZ, 0)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			if s := size(); s != 64<<10 {
				t.Skipf("this system's default pipe size is %d, not 64 KiB", s)
			}
			data := bytes.Repeat([]byte("x"), tc.written)
			if _, err := o.w.Write(data); err != nil { // fits in the pipe
				t.Fatal(err)
			}
			s.start()
			<-s.done
			if s := size(); s != tc.want {
				t.Errorf("pipe size %d after %d bytes, want %d", s, tc.written, tc.want)
			}
			grown := grownPipes.Load() - tc.taken
			s.finish(nil)
			if left := grownPipes.Load() - tc.taken; left != 0 {
				t.Errorf("%d pipes still counted as grown after finish (%d before)", left, grown)
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Errorf("passed on %d bytes, want the %d written", got.Len(), len(data))
			}
		})
	}
}

// linkedPair returns the linked outputs of a step whose two pipes are
// grown, as a fast step's are, with announcers that share what they know
// and their leaks; the test writes into the pipes and plays the copiers.
func linkedPair(t *testing.T) (out, errw *output, leaks *[]string) {
	t.Helper()
	var mu sync.Mutex
	leaks = new([]string)
	known := map[string]bool{}
	for _, o := range []**output{&out, &errw} {
		stream := map[**output]string{&out: "stdout", &errw: "stderr"}[o]
		x, err := newOutput(&announcer{mu: &mu, known: known, leaks: leaks, stream: stream})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(x.r); x.w.Close() })
		if _, err := unix.FcntlInt(x.w.Fd(), unix.F_SETPIPE_SZ, pipeSize); err != nil {
			t.Fatalf("grow the pipe: %v", err)
		}
		x.grown = true
		*o = x
	}
	s, err := newStreamSet(out, errw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.wake.close)
	return out, errw, leaks
}

// writeAll writes s into a pipe's write end.
func writeAll(t *testing.T, w *os.File, s string) {
	t.Helper()
	if _, err := w.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// readOn plays o's copier once: one read, then passOn.
func readOn(t *testing.T, o *output) {
	t.Helper()
	buf := make([]byte, readSize)
	n, err := syscall.Read(o.r, buf)
	if err != nil {
		t.Fatal(err)
	}
	o.set.mu.Lock()
	o.set.passOn(o, buf[:n], false)
	o.set.mu.Unlock()
}

// TestPassOnBudgetPerPipe: both pipes full when stdout's copier reads a
// small chunk, stderr's ending in an announcement written before the
// stdout line that names the value: stdout's own full pipe does not use
// up the budget before stderr is read (the order the probe of the
// streams could not force; here the pipes are filled first).
func TestPassOnBudgetPerPipe(t *testing.T) {
	out, errw, leaks := linkedPair(t)
	ann := "::add-mask::fresh-1\n"
	writeAll(t, errw.w, strings.Repeat("e", pipeSize-len(ann)-1)+"\n"+ann)
	line := "leak fresh-1\n"
	writeAll(t, out.w, strings.Repeat("o", pipeSize-len(line)-1)+"\n"+line)
	readOn(t, out)
	if len(*leaks) > 0 {
		t.Errorf("written before its announcement was seen: %.80q", (*leaks)[0])
	}
}

// TestPassOnHoldsBackPastBudget: the step writes on while passOn reads
// its stdout, which passOn leaves at its budget; the step then announces
// a value on stdout and names it on stderr, which passOn reads after.
// That line is held back until stdout's announcement is read, and then
// written: when stdout's copier reads on, at the end of the streams, or
// when the outputs are finished. A read on that fills the copier's
// buffer does not count as finding the pipe empty: the announcement
// may be behind it.
func TestPassOnHoldsBackPastBudget(t *testing.T) {
	// All the pipe holds: the take stops at stdout's budget, not at an
	// empty pipe.
	fill := "first\n" + strings.Repeat(strings.Repeat("o", 1023)+"\n", pipeSize/1024)[len("first\n"):]
	const ann, line = "::add-mask::fresh-1\n", "leak fresh-1\n"
	for _, end := range []string{"read on", "read on in small reads", "end of file", "finished"} {
		t.Run(end, func(t *testing.T) {
			out, errw, leaks := linkedPair(t)
			writeAll(t, out.w, fill)
			wrote := announceAfterTake(t, out, errw, ann, line)
			buf := make([]byte, len("first\n"))
			if _, err := syscall.Read(out.r, buf); err != nil {
				t.Fatal(err)
			}
			out.set.mu.Lock()
			out.set.passOn(out, buf, false)
			out.set.mu.Unlock()
			if !*wrote {
				t.Fatal("passOn did not take from stdout")
			}
			afterTake = nil
			if got := written(errw); got != "" {
				t.Errorf("stderr: %q written with stdout left at its budget, want it held back", got)
			}
			switch end {
			case "read on":
				readOn(t, out)
			case "read on in small reads":
				small := make([]byte, 4)
				out.set.readAll(out, &small)
			case "end of file":
				copyBoth(out, errw)
				out.w.Close()
				errw.w.Close()
				<-out.set.done
			case "finished":
				out.set.close(out)
				out.set.close(errw)
				out.set.flush()
			}
			if len(*leaks) > 0 {
				t.Errorf("written before its announcement was seen: %.80q", (*leaks)[0])
			}
			if got, want := written(out), fill+afterTakePad()+ann; got != want {
				t.Errorf("stdout: %d bytes written, want %d, the step's output in order", len(got), len(want))
			}
			if got := written(errw); got != line {
				t.Errorf("stderr: written %q, want %q", got, line)
			}
		})
	}
}

// TestPassOnQuietAfterBudget: stdout's take ends at its budget with its
// pipe just emptied, and a stderr line read after it is held back; then
// the step goes quiet, or ends, and nothing more comes on stdout. The
// line is written all the same: the copier that finds its pipe empty, or
// at its end, reads the other again.
func TestPassOnQuietAfterBudget(t *testing.T) {
	for _, then := range []string{"quiet", "end"} {
		t.Run(then, func(t *testing.T) {
			out, errw, leaks := linkedPair(t)
			fill := strings.Repeat(strings.Repeat("o", 1023)+"\n", pipeSize/1024)
			writeAll(t, errw.w, "x\n")
			writeAll(t, out.w, fill)
			const line = "progress: waiting\n"
			afterTake = func(x *output) {
				if x == out {
					writeAll(t, errw.w, line)
					afterTake = nil
				}
			}
			defer func() { afterTake = nil }()
			readOn(t, errw)
			if got := written(errw); got != "x\n" {
				t.Fatalf("stderr: written %q before the copiers start, want %q", got, "x\n")
			}
			if then == "end" {
				out.w.Close()
				errw.w.Close()
			}
			copyBoth(out, errw)
			for deadline := time.Now().Add(10 * time.Second); written(errw) == "x\n" && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if got := written(errw); got != "x\n"+line {
				t.Errorf("stderr: written %q 10 s on, want %q", got, "x\n"+line)
			}
			out.w.Close()
			errw.w.Close()
			<-out.set.done
			if len(*leaks) > 0 {
				t.Errorf("written before its announcement was seen: %.80q", (*leaks)[0])
			}
			if got := written(out); got != fill {
				t.Errorf("stdout: %d bytes written, want %d", len(got), len(fill))
			}
		})
	}
}

// TestPassOnDrainTimeout: when the drain times out, a process beyond
// reach keeps stdout's pipe at its budget, behind output that names a
// value on stderr after announcing it on stdout. That announcement is
// never read: the stderr line is not shown, and a line says so.
func TestPassOnDrainTimeout(t *testing.T) {
	const ann, line = "::add-mask::fresh-1\n", "leak fresh-1\n"
	out, errw, leaks := linkedPair(t)
	fill := strings.Repeat(strings.Repeat("o", 1023)+"\n", pipeSize/1024)
	// Shown before: the start of a line on stderr.
	writeAll(t, errw.w, "x")
	readOn(t, errw)
	writeAll(t, out.w, fill)
	announceAfterTake(t, out, errw, ann, line)
	out.set.close(out)
	afterTake = nil
	out.set.close(errw)
	out.set.flush()
	if len(*leaks) > 0 {
		t.Errorf("written before its announcement was seen: %.80q", (*leaks)[0])
	}
	if got := written(out); got != fill {
		t.Errorf("stdout: %d bytes written, want the %d read", len(got), len(fill))
	}
	want := "x\nnixflow: 13 bytes of output not shown: written after output that could not be read when the step ended\n"
	if got := written(errw); got != want {
		t.Errorf("stderr: written %q, want %q", got, want)
	}
}

// announceAfterTake makes the step write on after passOn's first take
// from out: on stdout more than what is left of its budget, which a take
// may end past by up to a packet (afterTakePad), and the announcement
// ann, then line, naming its value, on stderr. It reports whether it did.
func announceAfterTake(t *testing.T, out, errw *output, ann, line string) *bool {
	wrote := new(bool)
	afterTake = func(x *output) {
		if x == out && !*wrote {
			*wrote = true
			writeAll(t, out.w, afterTakePad()+ann)
			writeAll(t, errw.w, line)
		}
	}
	t.Cleanup(func() { afterTake = nil })
	return wrote
}

// afterTakePad is what announceAfterTake writes before the announcement.
func afterTakePad() string {
	return strings.Repeat(strings.Repeat("p", 1023)+"\n", 2*packetSize/1024)
}

// written returns what o's announcer was given.
func written(o *output) string {
	a := o.dst.(*announcer)
	a.mu.Lock()
	defer a.mu.Unlock()
	return string(a.written)
}

// copyBoth starts the copier of two linked outputs, as start does.
func copyBoth(out, errw *output) {
	go out.set.copy()
}
