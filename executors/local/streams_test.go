package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/watchdog"
)

// announcer plays the step runner's part: lines "::add-mask::V" announce
// V, from LookAhead or from Write; a line naming a value "fresh-..."
// that was not announced yet is a leak.
type announcer struct {
	mu     *sync.Mutex
	known  map[string]bool
	leaks  *[]string
	buf    []byte
	stream string
	// written is all that was written, in order.
	written []byte
}

func (a *announcer) scan(data []byte, write bool) {
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if write {
				a.buf = append(a.buf, data...)
			}
			return
		}
		line := string(data[:i])
		data = data[i+1:]
		if v, ok := strings.CutPrefix(line, "::add-mask::"); ok {
			a.known[v] = true
			continue
		}
		if write {
			for _, f := range strings.Fields(line) {
				if strings.HasPrefix(f, "fresh-") && !a.known[f] {
					*a.leaks = append(*a.leaks, a.stream+": "+line)
				}
			}
		}
	}
}

func (a *announcer) LookAhead(p []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.scan(append(append([]byte(nil), a.buf...), p...), false)
}

func (a *announcer) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.written = append(a.written, p...)
	data := append(a.buf, p...)
	a.buf = nil
	a.scan(data, true)
	return len(p), nil
}

var _ executors.LookAhead = (*announcer)(nil)

// TestStreamsLookAhead: whatever the order the two pipes are read in,
// a value announced on one stream is seen, through LookAhead, before
// the other stream's later output is written.
func TestStreamsLookAhead(t *testing.T) {
	script := `for i in $(seq 500); do v=fresh-$i-a; echo "::add-mask::$v"; echo "x $v" >&2; w=fresh-$i-b; echo "::add-mask::$w" >&2; echo "y $w"; done`
	assertNoLeaks(t, executors.Command{Argv: bash(script)})
}

// TestStreamsLookAheadPacketPipe: a step that sets O_DIRECT on its
// stdout (dd oflag=direct does) makes the pipe a packet pipe, whose
// reads return one write each: a read that does not fill the copier's
// buffer then does not mean that the pipe is empty, and the
// announcement behind it must still be seen before the other stream's
// line that names its value. Nothing is lost either: a read smaller than
// a packet would drop the rest of it.
func TestStreamsLookAheadPacketPipe(t *testing.T) {
	if _, err := exec.LookPath("dd"); err != nil {
		t.Skip("dd not found")
	}
	script := `dd if=/dev/null oflag=direct status=none
for i in $(seq 300); do
  for j in 1 2 3 4 5 6 7 8; do echo filler; done
  echo "::add-mask::fresh-$i-value"
  echo "x fresh-$i-value" >&2
done`
	stdout, stderr := assertNoLeaks(t, executors.Command{Argv: bash(script)})
	var wantOut, wantErr strings.Builder
	for i := 1; i <= 300; i++ {
		wantOut.WriteString(strings.Repeat("filler\n", 8) + fmt.Sprintf("::add-mask::fresh-%d-value\n", i))
		fmt.Fprintf(&wantErr, "x fresh-%d-value\n", i)
	}
	if stdout != wantOut.String() || stderr != wantErr.String() {
		t.Errorf("passed on %d and %d bytes, want %d and %d, all the step wrote", len(stdout), len(stderr), wantOut.Len(), wantErr.Len())
	}
}

// assertNoLeaks runs cmd with announcers for its two streams, and fails
// if a line naming a value was written before its announcement was seen.
// It returns what each stream was given.
func assertNoLeaks(t *testing.T, cmd executors.Command) (stdout, stderr string) {
	t.Helper()
	w := prepare(t, executors.JobSpec{})
	var mu sync.Mutex
	var leaks []string
	known := map[string]bool{}
	out := &announcer{mu: &mu, known: known, leaks: &leaks, stream: "stdout"}
	errw := &announcer{mu: &mu, known: known, leaks: &leaks, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = out, errw
	res, err := w.Run(context.Background(), cmd)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run: %v, %+v", err, res)
	}
	if len(leaks) > 0 {
		t.Errorf("%d lines written before their value's announcement was seen, first: %.80q", len(leaks), leaks[0])
	}
	return string(out.written), string(errw.written)
}

// TestStreamsLookAheadBehindMiB: a value announced at the end of a pipe
// that holds a MiB (all a grown pipe holds) is seen before the other
// stream's line that names it is written.
func TestStreamsLookAheadBehindMiB(t *testing.T) {
	// The step is this test binary (helperWrites), which writes each
	// piece in one write(2), as fast as it can: the stdout pipe then
	// holds the whole second MiB, announcement last, when stderr's line
	// is read.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	assertNoLeaks(t, executors.Command{Argv: []string{self}, Env: []string{"NIXFLOW_TEST_HELPER_WRITES=1"}})
}

// TestMain runs the tests, or, in the step of
// TestStreamsLookAheadBehindMiB, plays that step.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == watchdog.Arg {
		os.Exit(watchdog.Main(os.Args[2:], os.Stdin))
	}
	if os.Getenv("NIXFLOW_TEST_HELPER_WRITES") != "" {
		helperWrites()
		return
	}
	if cookie := os.Getenv("NIXFLOW_TEST_SCAN_COOKIE"); cookie != "" {
		// TestCookieScanAnotherUser's scan.
		found, _, _ := newCookieScan(cookie).find(0, true)
		fmt.Println(found)
		return
	}
	os.Exit(m.Run())
}

// helperWrites is the step of TestStreamsLookAheadBehindMiB.
func helperWrites() {
	write := func(f *os.File, data string) {
		if _, err := f.WriteString(data); err != nil {
			os.Exit(1)
		}
	}
	write(os.Stderr, strings.Repeat(strings.Repeat("e", 1023)+"\n", 16384))
	for i := range 20 {
		write(os.Stdout, strings.Repeat(strings.Repeat("o", 1023)+"\n", 1024))
		ann := fmt.Sprintf("::add-mask::fresh-%d\n", i)
		write(os.Stdout, strings.Repeat("p", 1<<20-101-len(ann))+"\n"+ann)
		write(os.Stderr, strings.Repeat("x", 199)+fmt.Sprintf("\nleak fresh-%d\n", i))
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCgroupCatchesEscapee: where steps get a cgroup of their own, a
// daemon that left the step's process group and cleared its environment
// (so that the cookie cannot find it: the way nginx or postgres rewrite
// theirs) does not outlive the step.
func TestCgroupCatchesEscapee(t *testing.T) {
	setsid := needStepCgroups(t)
	assertEscapeeKilled(t, prepare(t, executors.JobSpec{}), "env -i "+setsid)
}

// needStepCgroups skips t where steps get no cgroup of their own or
// setsid is missing, and returns setsid's path.
func needStepCgroups(t *testing.T) string {
	t.Helper()
	g := newStepCgroup(nil, "probe-"+newCookie())
	if g == nil {
		t.Skip("no cgroup v2 that nixflow may make cgroups in")
	}
	g.close()
	setsid, err := exec.LookPath("setsid")
	if err != nil {
		t.Skip("setsid not found")
	}
	return setsid
}

// assertEscapeeKilled runs in w a step that leaves a daemon behind,
// started by escape (a setsid command line) out of the step's process
// group, and checks that it does not outlive the step.
func assertEscapeeKilled(t *testing.T, w *workspace, escape string) {
	t.Helper()
	res, _, stderr := run(t, w, context.Background(), `mkfifo ready
`+escape+` bash -c 'echo $$ > esc.pid; echo > ready; exec sleep 1000' >/dev/null 2>&1 &
read -r _ < ready`)
	pid := readPID(t, filepath.Join(w.Dir(), "esc.pid"))
	defer syscall.Kill(pid, syscall.SIGKILL)
	if res.ExitCode != 0 {
		t.Fatal(stderr)
	}
	if !processGone(pid) {
		t.Errorf("the escapee %d survived its step", pid)
	}
}
