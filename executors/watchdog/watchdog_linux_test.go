//go:build linux

package watchdog

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSentinelWaits: until there is something to sweep, the guard is a
// shell, not a second nixflow: its start-up is what a run pays.
func TestSentinelWaits(t *testing.T) {
	enable(t)
	g, err := Start("test", nil, filepath.Join(t.TempDir(), "swept"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	guard, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Readlink("/proc/self/exe")
	sh, _ := filepath.EvalSymlinks("/bin/sh")
	if guard == self || guard != sh {
		t.Errorf("the guard runs %s, want /bin/sh (%s)", guard, sh)
	}
}

// TestGuardDeaf: a guard outlives every signal it can ignore, and what a
// shell would take from its environment (TMOUT ends a read of bash, which
// is /bin/sh on some systems); it sweeps nothing until its pipe ends.
func TestGuardDeaf(t *testing.T) {
	shells := []string{"/bin/sh"}
	if bash, err := exec.LookPath("bash"); err == nil {
		shells = append(shells, bash)
	}
	for _, sh := range shells {
		t.Run(filepath.Base(sh), func(t *testing.T) {
			old := sentinelShell
			sentinelShell = sh
			t.Cleanup(func() { sentinelShell = old })
			enable(t)
			out := filepath.Join(t.TempDir(), "swept")
			g, err := Start("test", append(os.Environ(), "TMOUT=1", "SHELLOPTS=xtrace"), out)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Stop()
			waitIgnoring(t, g.cmd.Process.Pid, syscall.Signal(40))
			for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT,
				syscall.SIGUSR1, syscall.SIGPWR, syscall.SIGTSTP, syscall.SIGABRT, syscall.Signal(40)} {
				if err := g.cmd.Process.Signal(sig); err != nil {
					t.Fatalf("%v: %v", sig, err)
				}
			}
			time.Sleep(1500 * time.Millisecond) // TMOUT=1 would have ended the read
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("the guard swept while nixflow runs: %v", err)
			}
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(g.cmd.Process.Pid, &ws, syscall.WNOHANG, nil); pid != 0 || err != nil {
				t.Fatalf("the guard ended: %v, %v", ws, err)
			}
			if err := g.Abandon(); err != nil {
				t.Fatalf("the guard: %v", err)
			}
			if _, err := os.Stat(out); err != nil {
				t.Errorf("no sweep when the pipe ended: %v", err)
			}
		})
	}
}

// waitIgnoring waits until process pid ignores sig (a shell has run its
// trap), for up to 10 s.
func waitIgnoring(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	for range 1000 {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if mask, ok := strings.CutPrefix(line, "SigIgn:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64); err == nil && m&(1<<(sig-1)) != 0 {
					return
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d does not ignore %v after 10 s", pid, sig)
}

// TestNoShell: where the sentinel's shell cannot start, the guard waits
// as nixflow, and sweeps with every note.
func TestNoShell(t *testing.T) {
	old := sentinelShell
	sentinelShell = "/nonexistent/sh"
	t.Cleanup(func() { sentinelShell = old })
	enable(t)
	out := filepath.Join(t.TempDir(), "swept")
	g, err := Start("test", nil, out)
	if err != nil {
		t.Fatal(err)
	}
	g.Note("made a")
	if err := g.Abandon(); err != nil {
		t.Fatalf("the guard: %v", err)
	}
	if got, err := os.ReadFile(out); err != nil || string(got) != "made a" {
		t.Errorf("the sweeper got %q, %v; want the note", got, err)
	}
}
