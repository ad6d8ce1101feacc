package local

import (
	"bytes"
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

// TestPassOnBudgetPerPipe: both pipes full when stdout's copier reads a
// small chunk, stderr's ending in an announcement written before the
// stdout line that names the value: stdout's own full pipe does not use
// up the budget before stderr is read (the order the probe of the
// streams could not force; here the pipes are filled first).
func TestPassOnBudgetPerPipe(t *testing.T) {
	var mu sync.Mutex
	var leaks []string
	known := map[string]bool{}
	out, err := newOutput(&announcer{mu: &mu, known: known, leaks: &leaks, stream: "stdout"})
	if err != nil {
		t.Fatal(err)
	}
	errw, err := newOutput(&announcer{mu: &mu, known: known, leaks: &leaks, stream: "stderr"})
	if err != nil {
		t.Fatal(err)
	}
	defer out.r.Close()
	defer errw.r.Close()
	defer out.w.Close()
	defer errw.w.Close()
	linkStreams(out, errw)
	for _, o := range []*output{out, errw} {
		if _, err := unix.FcntlInt(o.w.Fd(), unix.F_SETPIPE_SZ, pipeSize); err != nil {
			t.Fatalf("grow the pipe: %v", err)
		}
		o.grown = true
	}
	ann := "::add-mask::fresh-1\n"
	if _, err := errw.w.WriteString(strings.Repeat("e", pipeSize-len(ann)-1) + "\n" + ann); err != nil {
		t.Fatal(err)
	}
	line := "leak fresh-1\n"
	if _, err := out.w.WriteString(strings.Repeat("o", pipeSize-len(line)-1) + "\n" + line); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, copyBufferSize)
	n, err := out.r.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	out.set.mu.Lock()
	out.set.passOn(out, buf[:n])
	out.set.mu.Unlock()
	if len(leaks) > 0 {
		t.Errorf("written before its announcement was seen: %.80q", leaks[0])
	}
}
