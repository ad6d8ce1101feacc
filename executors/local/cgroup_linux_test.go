//go:build linux

package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nixflow/nixflow/executors"
)

// cgroupWorkspace skips the test where steps get no cgroups of their own,
// and returns setsid's path, nixflow's cgroup, an executor (to close)
// and a workspace of it.
func cgroupWorkspace(t *testing.T) (setsid, base string, x *Executor, w *workspace) {
	t.Helper()
	setsid = needStepCgroups(t)
	base, _ = ownCgroup()
	x = &Executor{}
	ws, err := x.Prepare(context.Background(), executors.JobSpec{RunDir: t.TempDir(), Job: "j"})
	if err != nil {
		t.Fatal(err)
	}
	return setsid, base, x, ws.(*workspace)
}

// TestCloseRemovesStepCgroups: where steps get cgroups of their own, the
// cgroups the executor's steps ran in are gone once it is closed, also
// those it kept for later steps; a step after one whose leftover
// process was killed in its cgroup runs to its end; an empty cgroup
// serves the next step.
func TestCloseRemovesStepCgroups(t *testing.T) {
	setsid, base, x, w := cgroupWorkspace(t)
	used := map[string]bool{}
	for _, script := range []string{
		`cat /proc/self/cgroup`,
		// A process out of the step's process group: only the cgroup
		// catches it.
		`mkfifo ready; ` + setsid + ` bash -c 'echo > ready; exec sleep 1000' >/dev/null 2>&1 & read -r _ < ready; cat /proc/self/cgroup`,
		`cat /proc/self/cgroup`,
		`cat /proc/self/cgroup`,
	} {
		res, stdout, stderr := run(t, w, context.Background(), script)
		if res.ExitCode != 0 {
			t.Fatalf("%q: %+v, stderr %q", script, res, stderr)
		}
		for line := range strings.Lines(stdout) {
			if rel, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
				used[rel] = true
			}
		}
	}
	if len(used) == 0 {
		t.Fatal("no step saw its cgroup")
	}
	// The first step's cgroup, left empty, served the third and fourth;
	// the second's, where a process was killed, did not serve again.
	if len(used) != 2 {
		t.Errorf("the steps ran in %d cgroups, want 2: %v", len(used), used)
	}
	if err := w.Teardown(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for rel := range used {
		dir := filepath.Join(base, filepath.Base(rel))
		if !strings.HasPrefix(filepath.Base(rel), "nixflow-step-") {
			t.Errorf("a step ran in cgroup %q, not one of its own", rel)
			continue
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cgroup %s left after Close (%v)", dir, err)
		}
	}
}

// TestStepCgroupKillsBelow: a process a step moved into a cgroup it made
// below its own is killed with the step, and Close removes both cgroups.
func TestStepCgroupKillsBelow(t *testing.T) {
	setsid, base, x, w := cgroupWorkspace(t)
	res, stdout, stderr := run(t, w, context.Background(), `
		cg='`+base+`'/$(basename "$(sed -n 's/^0:://p' /proc/self/cgroup)")
		mkdir "$cg/hide"
		mkfifo ready
		`+setsid+` bash -c 'echo $$ > "$1/cgroup.procs"; echo $$ > hid.pid; echo > ready; exec sleep 1000' _ "$cg/hide" >/dev/null 2>&1 &
		read -r _ < ready
		echo "$cg"
		sed -n 's/^0:://p' /proc/$(cat hid.pid)/cgroup`)
	pid := readPID(t, filepath.Join(w.Dir(), "hid.pid"))
	defer syscall.Kill(pid, syscall.SIGKILL)
	if res.ExitCode != 0 {
		t.Fatalf("%+v, stderr %q", res, stderr)
	}
	lines := strings.Fields(stdout)
	if len(lines) != 2 || !strings.HasSuffix(lines[1], "/hide") {
		t.Fatalf("the step's process did not move below its cgroup: %q", stdout)
	}
	if !processGone(pid) {
		t.Errorf("process %d, in a cgroup below the step's, outlived the step", pid)
	}
	if err := w.Teardown(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lines[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cgroup %s left after Close (%v)", lines[0], err)
	}
}

// TestSweepCgroupsOfDeadNixflow: the empty step cgroups a nixflow killed
// with SIGKILL left (those it kept for later steps) are removed by the
// next executor; those of a nixflow still running, and those holding a
// process, stay.
func TestSweepCgroupsOfDeadNixflow(t *testing.T) {
	needStepCgroups(t)
	base, _ := ownCgroup()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(base, cgroupPrefix+strconv.Itoa(dead.Process.Pid)+"-"+newCookie())
	live := filepath.Join(base, cgroupPrefix+strconv.Itoa(os.Getpid())+"-"+newCookie())
	for _, dir := range []string{left, live} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.Remove(left); os.Remove(live) })
	b := &cgroupBase{}
	if _, ok := b.get(); !ok {
		t.Fatal("no cgroup base")
	}
	if _, err := os.Stat(left); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the cgroup of a nixflow that is gone is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the cgroup of a running nixflow was removed: %v", err)
	}
}
