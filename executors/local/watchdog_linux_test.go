//go:build linux

package local

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/watchdog"
)

// watchedExecutor returns an executor with a watchdog (this test binary,
// whose TestMain runs watchdog.Main), and a workspace of it whose steps
// run in a cgroup of their own or not.
func watchedExecutor(t *testing.T, cgroup bool) (*Executor, *workspace) {
	t.Helper()
	watchdog.Enable("nixflow-test")
	t.Cleanup(func() { watchdog.Enable("") })
	ex := &Executor{}
	ex.Watch(nil)
	ws, err := ex.Prepare(context.Background(), executors.JobSpec{RunDir: t.TempDir(), Job: "job"})
	if err != nil {
		t.Fatal(err)
	}
	w := ws.(*workspace)
	w.noCgroup = !cgroup
	t.Cleanup(func() {
		w.Teardown(context.Background(), false)
		ex.Close(context.Background())
	})
	return ex, w
}

// waitFiles waits for the files to be written (not empty: a shell's
// `echo $! > f` makes the file, then writes it), up to 10 s.
func waitFiles(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s was not written in 10 s", p)
			}
		}
	}
}

// bystander starts a process that is not the executor's step, with env
// as its environment, in cgroup g if not nil; it is killed at the end.
func bystander(t *testing.T, g *stepCgroup, env ...string) int {
	t.Helper()
	c := &exec.Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", "exec sleep 60"}, Env: env, SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
	c, err := g.start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c.Process.Pid
}

// TestWatchdogStopsSteps: when the watchdog's input ends without the
// executor's word (nixflow was killed), it kills the running step with
// what it started: in its process group, escaped with setsid, and, in a
// cgroup of its own, escaped with a cleared environment too, and the
// cgroup is removed. Then it ends. It kills nothing else: not the steps
// of another executor (another token), nor of a host command (a cookie
// without one), nor another executor's cgroup.
func TestWatchdogStopsSteps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cgroup bool
		escape string
	}{
		{"cookie", false, "setsid"},
		{"cgroup", true, "env -i setsid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cgroup {
				needStepCgroups(t)
			}
			ex, w := watchedExecutor(t, tc.cgroup)
			other := newGuard(nil)
			bystanders := []int{
				bystander(t, nil, cookieVar+"="+other.cookie()),
				bystander(t, nil, cookieVar+"="+newCookie()),
			}
			if tc.cgroup {
				g := newStepCgroup(&cgroupBase{}, other.cookie())
				if g == nil {
					t.Fatal("no cgroup for another executor's step")
				}
				t.Cleanup(func() { g.kill(); g.close() })
				bystanders = append(bystanders, bystander(t, g))
			}
			ended := make(chan executors.Result, 1)
			go func() {
				res, _ := w.Run(context.Background(), executors.Command{Argv: bash(
					`sleep 60 & echo $! > group.pid; ` + tc.escape + ` sleep 61 >/dev/null 2>&1 & echo $! > escaped.pid; wait`)})
				ended <- res
			}()
			waitFiles(t, filepath.Join(w.Dir(), "group.pid"), filepath.Join(w.Dir(), "escaped.pid"))
			var pids []int
			for _, f := range []string{"group.pid", "escaped.pid"} {
				pid := readPID(t, filepath.Join(w.Dir(), f))
				defer syscall.Kill(pid, syscall.SIGKILL)
				pids = append(pids, pid)
			}
			// nixflow killed: its end of the pipe closes, without a word.
			ex.watch.once.Do(func() {}) // start's writes happened before
			if ex.watch.guard == nil {
				t.Fatal("no watchdog started with the step")
			}
			if err := ex.watch.guard.Abandon(); err != nil {
				t.Errorf("watchdog: %v", err)
			}
			for _, pid := range pids {
				if !processGone(pid) {
					t.Errorf("process %d of the step survived the watchdog", pid)
				}
			}
			for _, pid := range bystanders {
				if processGone(pid) {
					t.Errorf("process %d, not the executor's, killed by its watchdog", pid)
				}
			}
			if prefix := ex.cgroups.prefixOf(ex.watch.token); tc.cgroup {
				if left, _ := filepath.Glob(prefix + "*"); len(left) > 0 {
					t.Errorf("step cgroups left: %q", left)
				}
			}
			select {
			case res := <-ended:
				if res.ExitCode == 0 {
					t.Errorf("step: exit code 0, want its shell killed")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the step did not end 10 s after the watchdog killed it")
			}
		})
	}
}

// TestWatchdogDone: once the steps are over (Close), the watchdog ends,
// and kills nothing, not even a process with one of the executor's
// cookies.
func TestWatchdogDone(t *testing.T) {
	ex, w := watchedExecutor(t, false)
	res, err := w.Run(context.Background(), executors.Command{Argv: bash("true")})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run: %v, %+v", err, res)
	}
	bystander := exec.Command("sleep", "60")
	bystander.Env = []string{cookieVar + "=" + ex.watch.cookie()}
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	defer bystander.Process.Kill()
	guard := ex.watch.guard
	if guard == nil {
		t.Fatal("no watchdog started with the step")
	}
	if err := ex.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !guard.Done() {
		t.Error("the watchdog was not stopped")
	}
	if processGone(bystander.Process.Pid) {
		t.Error("the watchdog killed a process after it was told the steps were over")
	}
}
