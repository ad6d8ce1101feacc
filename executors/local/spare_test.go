//go:build linux

package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nixflow/nixflow/executors"
)

var testControlFiles = []string{"env", "path", "output"}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// spareExecutor returns an executor as New makes it, closed when the test
// ends.
func spareExecutor(t *testing.T) *Executor {
	t.Helper()
	ex, err := New(executors.Params{Environ: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ex.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ex.(*Executor)
}

// prepareIn prepares job in runDir with ex, the control files named.
func prepareIn(t *testing.T, ex *Executor, runDir, job string) *workspace {
	t.Helper()
	ws, err := ex.Prepare(context.Background(), executors.JobSpec{RunDir: runDir, Job: job, ControlFiles: testControlFiles})
	if err != nil {
		t.Fatal(err)
	}
	return ws.(*workspace)
}

func teardown(t *testing.T, w *workspace) {
	t.Helper()
	if err := w.Teardown(context.Background(), false); err != nil {
		t.Fatal(err)
	}
}

// spareCount returns how many directories wait in runDir/spare, of
// every executor.
func spareCount(t *testing.T, runDir string) int {
	t.Helper()
	n := 0
	execs, err := os.ReadDir(filepath.Join(runDir, "spare"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range execs {
		n += len(listDir(t, filepath.Join(runDir, "spare", e.Name())))
	}
	return n
}

// assertAsNew checks that w's directories are as a new job's: an empty
// workspace, a temporary directory of mode 0700 holding the control
// files, empty.
func assertAsNew(t *testing.T, w *workspace) {
	t.Helper()
	if got := listDir(t, w.TempDir()); !slices.Equal(got, []string{"env", "output", "path"}) {
		t.Errorf("temporary directory holds %q, want the control files only", got)
	}
	for _, name := range testControlFiles {
		if info, err := os.Lstat(filepath.Join(w.TempDir(), name)); err != nil || !info.Mode().IsRegular() || info.Size() != 0 {
			t.Errorf("%s: %v, %v; want an empty file", name, info, err)
		}
	}
	if info, err := os.Stat(w.TempDir()); err != nil || info.Mode() != fs.ModeDir|0o700 {
		t.Errorf("temporary directory: %v, %v; want mode 0700", info, err)
	}
	if got := listDir(t, w.Dir()); len(got) != 0 {
		t.Errorf("workspace holds %q, want nothing", got)
	}
}

// The next job starts in the temporary directory of a job that ended,
// emptied: the control files kept, empty; Close removes what is left, and
// nothing of the run's spare directories stays.
func TestSpareDirsReused(t *testing.T) {
	setsid := needStepCgroups(t)
	runDir := t.TempDir()
	ex := spareExecutor(t)
	a := prepareIn(t, ex, runDir, "a")
	assertAsNew(t, a)
	// What the step leaves running is killed in its cgroup: nothing of
	// it is left, and its temporary directory can serve.
	res, _, stderr := run(t, a, context.Background(), `
		t=../../tmp/a
		echo TOKEN=abc >>"$t/env"; echo /opt/bin >>"$t/path"
		echo data >file; rm file
		`+setsid+` sleep 1000 >/dev/null 2>&1 &`)
	if res.ExitCode != 0 {
		t.Fatal(stderr)
	}
	teardown(t, a)
	for _, p := range []string{a.Dir(), a.TempDir()} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after Teardown (%v)", p, err)
		}
	}
	if n := spareCount(t, runDir); n != 1 {
		t.Errorf("%d spare directories after a ended, want 1", n)
	}

	b := prepareIn(t, ex, runDir, "b")
	assertAsNew(t, b)
	if n := spareCount(t, runDir); n != 0 {
		t.Errorf("%d spare directories once b took them, want 0", n)
	}

	// b ends with its workspace kept: the temporary directory waits
	// under spare, until Close.
	if err := b.Teardown(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if n := spareCount(t, runDir); n != 1 {
		t.Errorf("%d spare directories after b ended, want 1", n)
	}
	if _, err := os.Stat(b.Dir()); err != nil {
		t.Errorf("kept workspace: %v", err)
	}
	if err := ex.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(runDir, "spare")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("spare left after Close (%v)", err)
	}
	if got := listDir(t, filepath.Join(runDir, "tmp")); len(got) != 0 {
		t.Errorf("tmp holds %q after Close", got)
	}
	if got := listDir(t, filepath.Join(runDir, "jobs")); !slices.Equal(got, []string{"b"}) {
		t.Errorf("jobs holds %q after Close, want the kept workspace", got)
	}
}

// Two executors of one run (jobs with and without copyRepo) keep their
// spare directories apart, and each Close removes its own.
func TestSpareDirsTwoExecutors(t *testing.T) {
	needStepCgroups(t)
	runDir := t.TempDir()
	x1, x2 := spareExecutor(t), spareExecutor(t)
	for _, job := range []string{"a", "b"} {
		for i, ex := range []*Executor{x1, x2} {
			w := prepareIn(t, ex, runDir, job+strconv.Itoa(i))
			if res, _, stderr := run(t, w, context.Background(), `true`); res.ExitCode != 0 {
				t.Fatal(stderr)
			}
			teardown(t, w)
		}
	}
	if n := spareCount(t, runDir); n != 2 {
		t.Errorf("%d spare directories, want one an executor", n)
	}
	if err := x1.Close(context.Background()); err != nil {
		t.Fatalf("Close of the first executor: %v", err)
	}
	if n := spareCount(t, runDir); n != 1 {
		t.Errorf("%d spare directories once the first executor closed, want 1", n)
	}
	if err := x2.Close(context.Background()); err != nil {
		t.Fatalf("Close of the second executor: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(runDir, "spare")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("spare left after both closed (%v)", err)
	}
}

// A directory a step changed does not serve another job: the next job
// gets new ones, and a file linked to a control file is left as it was.
func TestSpareDirsChanged(t *testing.T) {
	needStepCgroups(t)
	for _, tc := range []struct {
		name, script string
		// change, if set, changes job a's directories before they are
		// torn down; it skips the test where it cannot.
		change func(t *testing.T, a *workspace)
		// spare is how many directories serve again: 1 for a control.
		spare int
	}{
		{name: "control: a workspace changed", script: `echo x >file; chmod g+s .`, spare: 1},
		{name: "file of its own", script: `echo x >"$t/mine"`},
		{name: "directory of its own", script: `mkdir "$t/mine"`},
		{name: "control file removed", script: `rm "$t/output"`},
		{name: "hard link", script: `ln "$t/env" ../../linked`},
		{name: "symlink", script: `rm "$t/path"; ln -s ../../outside "$t/path"`},
		{name: "file mode", script: `chmod 0604 "$t/output"`},
		{name: "temp mode", script: `chmod 0755 "$t"`},
		{name: "setgid", script: `chmod g+s "$t"`},
		{name: "sticky", script: `chmod +t "$t"`},
		{name: "attribute flag", script: `chattr +A "$t/env" || exit 3`},
		{name: "group", change: func(t *testing.T, a *workspace) {
			if os.Geteuid() != 0 {
				t.Skip("changing a file's group to any other takes root")
			}
			if err := os.Chown(filepath.Join(a.TempDir(), "env"), -1, os.Getegid()+1); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "xattr", change: func(t *testing.T, a *workspace) {
			if err := unix.Setxattr(filepath.Join(a.TempDir(), "env"), "user.nixflow", []byte("1"), 0); err != nil {
				t.Skipf("no user extended attributes here: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDir := t.TempDir()
			outside := filepath.Join(runDir, "outside")
			if err := os.WriteFile(outside, []byte("keep me\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			ex := spareExecutor(t)
			a := prepareIn(t, ex, runDir, "a")
			res, _, stderr := run(t, a, context.Background(), `t=../../tmp/a; echo SECRET >>"$t/env"; `+tc.script)
			if res.ExitCode == 3 {
				t.Skipf("cannot here: %s", stderr)
			}
			if res.ExitCode != 0 {
				t.Fatal(stderr)
			}
			if tc.change != nil {
				tc.change(t, a)
			}
			teardown(t, a)
			if n := spareCount(t, runDir); n != tc.spare {
				t.Errorf("%d spare directories, want %d", n, tc.spare)
			}
			if b, err := os.ReadFile(outside); err != nil || string(b) != "keep me\n" {
				t.Errorf("file outside: %q, %v", b, err)
			}
			if b, err := os.ReadFile(filepath.Join(runDir, "linked")); err == nil && string(b) != "SECRET\n" {
				t.Errorf("file linked to env: %q, want it as the step left it", b)
			}
			b := prepareIn(t, ex, runDir, "b")
			t.Cleanup(func() { teardown(t, b) })
			assertAsNew(t, b)
			if info, err := os.Stat(b.TempDir()); err != nil || info.Mode()&(fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Errorf("b's temporary directory: %v, %v; want it as made", info, err)
			}
			if v, err := unix.Getxattr(filepath.Join(b.TempDir(), "env"), "user.nixflow", make([]byte, 16)); err == nil {
				t.Errorf("b's env has the extended attribute a's had (%d bytes)", v)
			}
		})
	}
}

// An extended attribute whose value changed (an ACL edited, say) tells a
// directory from the one made.
func TestMadeDirXattrValue(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Setxattr(dir, "user.nixflow", []byte("1"), 0); err != nil {
		t.Skipf("no user extended attributes here: %v", err)
	}
	m := recordDir(dir, testControlFiles)
	if m == nil {
		t.Fatal("recordDir failed")
	}
	if !m.emptied(dir) {
		t.Fatal("the directory as made is not as made")
	}
	if err := unix.Setxattr(dir, "user.nixflow", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	if m.emptied(dir) {
		t.Error("a directory whose extended attribute changed value is as made")
	}
}

// The temporary directory of a job whose steps ran without a cgroup,
// where a process that cleared its environment may be left, serves no
// other job, nor does one of an executor other backends make for their
// host side; one of the same executor whose steps had their cgroup
// does.
func TestSpareDirsOnlyWhenNothingLeft(t *testing.T) {
	needStepCgroups(t)
	runDir := t.TempDir()
	for _, tc := range []struct {
		job      string
		ex       *Executor
		noCgroup bool
		spare    int
	}{
		{"no-cgroup", spareExecutor(t), true, 0},
		{"host-side", closedAtEnd(t), false, 0},
		{"control", spareExecutor(t), false, 1},
	} {
		w := prepareIn(t, tc.ex, runDir, tc.job)
		w.noCgroup = tc.noCgroup
		if res, _, stderr := run(t, w, context.Background(), `true`); res.ExitCode != 0 {
			t.Fatal(stderr)
		}
		teardown(t, w)
		if n := spareCount(t, runDir); n != tc.spare {
			t.Errorf("%s: %d spare directories, want %d", tc.job, n, tc.spare)
		}
	}
}

// A spare directory never takes the place of an existing one.
func TestSpareDirsPrepareExisting(t *testing.T) {
	needStepCgroups(t)
	runDir := t.TempDir()
	ex := spareExecutor(t)
	a := prepareIn(t, ex, runDir, "a")
	if res, _, stderr := run(t, a, context.Background(), `true`); res.ExitCode != 0 {
		t.Fatal(stderr)
	}
	teardown(t, a)
	if n := spareCount(t, runDir); n != 1 {
		t.Fatalf("%d spare directories, want 1", n)
	}
	dir := filepath.Join(runDir, "tmp", "b")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Prepare(context.Background(), executors.JobSpec{RunDir: runDir, Job: "b", ControlFiles: testControlFiles}); err == nil {
		t.Fatal("Prepare over an existing (empty) temporary directory succeeded")
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Errorf("existing temporary directory now holds %q", got)
	}
}
