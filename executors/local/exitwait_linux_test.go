package local

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAwaitExitHoldsNoThread: waiting for 64 steps at once takes no
// thread each (Go's poller waits for their pidfds), where exec.Cmd.Wait
// alone blocks one in waitid(2) for each; and each wait ends when its
// process has.
func TestAwaitExitHoldsNoThread(t *testing.T) {
	if fd, err := openPidfd(os.Getpid()); err != nil {
		t.Skipf("no pidfd here (Linux before 5.3): %v", err)
	} else {
		unix.Close(fd)
	}
	const n = 64
	before := threads(t)
	var cmds []*exec.Cmd
	release, err := os.Create(t.TempDir() + "/release")
	if err != nil {
		t.Fatal(err)
	}
	release.Close()
	for range n {
		// Each ends once the file is gone.
		c := exec.Command("sh", "-c", `while [ -e "$1" ]; do sleep 0.05; done`, "sh", release.Name())
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	var started, done sync.WaitGroup
	for _, c := range cmds {
		started.Add(1)
		done.Go(func() {
			started.Done()
			awaitExit(c.Process.Pid)
			// Ended, not reaped: a zombie for Wait.
			if data, err := os.ReadFile("/proc/" + strconv.Itoa(c.Process.Pid) + "/stat"); err != nil || !strings.Contains(string(data), ") Z ") {
				t.Errorf("awaitExit returned before its process ended: %s", data)
			}
			if err := c.Wait(); err != nil {
				t.Error(err)
			}
		})
	}
	started.Wait()
	// The most threads seen over a moment, as the waits begin.
	during := 0
	for range 20 {
		during = max(during, threads(t))
		time.Sleep(10 * time.Millisecond)
	}
	if during-before >= n/2 {
		t.Errorf("%d threads while %d waits run, %d before: a thread held by each wait", during, n, before)
	}
	os.Remove(release.Name())
	done.Wait()
}

// threads counts the threads of this process.
func threads(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}
