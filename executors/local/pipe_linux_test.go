package local

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"

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
			linkStreams(o)
			size := func() int {
				t.Helper()
				var n int
				var ferr error
				if err := o.rc.Control(func(fd uintptr) { n, ferr = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) }); err != nil || ferr != nil {
					t.Fatal(err, ferr)
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
			o.start()
			<-o.done
			if s := size(); s != tc.want {
				t.Errorf("pipe size %d after %d bytes, want %d", s, tc.written, tc.want)
			}
			grown := grownPipes.Load() - tc.taken
			o.finish(nil)
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
		t.Cleanup(func() { x.r.Close(); x.w.Close() })
		if _, err := unix.FcntlInt(x.w.Fd(), unix.F_SETPIPE_SZ, pipeSize); err != nil {
			t.Fatalf("grow the pipe: %v", err)
		}
		x.grown = true
		*o = x
	}
	linkStreams(out, errw)
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
	n, err := o.r.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	o.set.mu.Lock()
	o.set.passOn(o, buf[:n])
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
// That line is held back until stdout's announcement is read: by
// stdout's copier reading on, or when the outputs are finished.
func TestPassOnHoldsBackPastBudget(t *testing.T) {
	// All the pipe holds: the take stops at stdout's budget, not at an
	// empty pipe.
	fill := "first\n" + strings.Repeat(strings.Repeat("o", 1023)+"\n", pipeSize/1024)[len("first\n"):]
	const ann, line = "::add-mask::fresh-1\n", "leak fresh-1\n"
	for _, end := range []string{"read on", "finished"} {
		t.Run(end, func(t *testing.T) {
			out, errw, leaks := linkedPair(t)
			writeAll(t, out.w, fill)
			wrote := false
			afterTake = func(x *output) {
				if x == out && !wrote {
					wrote = true
					writeAll(t, out.w, ann)
					writeAll(t, errw.w, line)
				}
			}
			defer func() { afterTake = nil }()
			buf := make([]byte, len("first\n"))
			if _, err := out.r.Read(buf); err != nil {
				t.Fatal(err)
			}
			out.set.mu.Lock()
			out.set.passOn(out, buf)
			out.set.mu.Unlock()
			if !wrote {
				t.Fatal("passOn did not take from stdout")
			}
			afterTake = nil
			if got := len(errw.dst.(*announcer).written); got != 0 {
				t.Errorf("stderr: %d bytes written with stdout left at its budget, want them held back", got)
			}
			switch end {
			case "read on":
				readOn(t, out)
			case "finished":
				out.set.close(out)
				out.set.close(errw)
				out.flush()
			}
			if len(*leaks) > 0 {
				t.Errorf("written before its announcement was seen: %.80q", (*leaks)[0])
			}
			if got, want := string(out.dst.(*announcer).written), fill+ann; got != want {
				t.Errorf("stdout: %d bytes written, want %d, the step's output in order", len(got), len(want))
			}
			if got := string(errw.dst.(*announcer).written); got != line {
				t.Errorf("stderr: written %q, want %q", got, line)
			}
		})
	}
}
