//go:build linux

package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

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

// The next job starts in the directories of a job that ended, emptied:
// the control files kept, empty, and nothing else; Close removes what is
// left, and nothing of the run's spare directories stays.
func TestSpareDirsReused(t *testing.T) {
	runDir := t.TempDir()
	ex := &Executor{}
	a := prepareIn(t, ex, runDir, "a")
	res, _, stderr := run(t, a, context.Background(), `
		t=../../tmp/a
		: >>"$t/env" >>"$t/path" >>"$t/output"
		echo TOKEN=abc >>"$t/env"; echo x >"$t/mine"; mkdir "$t/sub"
		echo data >file; mkdir -p d/e; echo y >d/e/f; chmod 0500 d`)
	if res.ExitCode != 0 {
		t.Fatal(stderr)
	}
	teardown(t, a)
	for _, p := range []string{a.Dir(), a.TempDir()} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after Teardown (%v)", p, err)
		}
	}
	if got := listDir(t, filepath.Join(runDir, "spare")); len(got) != 2 {
		t.Errorf("spare holds %q after a ended, want two directories", got)
	}

	b := prepareIn(t, ex, runDir, "b")
	if got := listDir(t, b.TempDir()); !slices.Equal(got, []string{"env", "output", "path"}) {
		t.Errorf("b's temporary directory holds %q, want the control files only", got)
	}
	for _, name := range testControlFiles {
		if info, err := os.Stat(filepath.Join(b.TempDir(), name)); err != nil || info.Size() != 0 {
			t.Errorf("b's %s: %v, %v; want an empty file", name, info, err)
		}
	}
	if info, err := os.Stat(b.TempDir()); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("b's temporary directory: %v, %v; want mode 0700", info, err)
	}
	if got := listDir(t, b.Dir()); len(got) != 0 {
		t.Errorf("b's workspace holds %q, want nothing", got)
	}
	if got := listDir(t, filepath.Join(runDir, "spare")); len(got) != 0 {
		t.Errorf("spare holds %q once b took them", got)
	}

	// b ends: its directories wait under spare, until Close.
	teardown(t, b)
	if got := listDir(t, filepath.Join(runDir, "spare")); len(got) != 2 {
		t.Errorf("spare holds %q after b ended, want two directories", got)
	}
	if err := ex.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"spare", "tmp", "jobs"} {
		if _, err := os.Lstat(filepath.Join(runDir, dir)); dir == "spare" && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left after Close (%v)", dir, err)
		} else if dir != "spare" && len(listDir(t, filepath.Join(runDir, dir))) != 0 {
			t.Errorf("%s not empty after Close: %q", dir, listDir(t, filepath.Join(runDir, dir)))
		}
	}
}

// A directory or control file a step changed is not handed on: a file
// linked elsewhere is neither kept nor truncated, the next job gets new
// directories or files where the old ones were not as made.
func TestSpareDirsChanged(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		// spare is how many of the job's directories are handed on;
		// gone, the control files the next job must not find.
		spare int
		gone  []string
	}{
		{name: "hard link", script: `ln "$t/env" ../../linked`, spare: 2, gone: []string{"env"}},
		{name: "symlink", script: `rm "$t/path"; ln -s ../../outside "$t/path"`, spare: 2, gone: []string{"path"}},
		{name: "file mode", script: `chmod 0604 "$t/output"`, spare: 2, gone: []string{"output"}},
		{name: "temp mode", script: `chmod 0755 "$t"`, spare: 1, gone: testControlFiles},
		{name: "workspace mode", script: `chmod 0701 .`, spare: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDir := t.TempDir()
			outside := filepath.Join(runDir, "outside")
			if err := os.WriteFile(outside, []byte("keep me\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			ex := closedAtEnd(t)
			a := prepareIn(t, ex, runDir, "a")
			res, _, stderr := run(t, a, context.Background(), `t=../../tmp/a; : >>"$t/env" >>"$t/path" >>"$t/output"; echo SECRET >>"$t/env"; `+tc.script)
			if res.ExitCode != 0 {
				t.Fatal(stderr)
			}
			teardown(t, a)
			if got := listDir(t, filepath.Join(runDir, "spare")); len(got) != tc.spare {
				t.Errorf("spare holds %q, want %d directories", got, tc.spare)
			}
			if b, err := os.ReadFile(outside); err != nil || string(b) != "keep me\n" {
				t.Errorf("file outside: %q, %v", b, err)
			}
			if b, err := os.ReadFile(filepath.Join(runDir, "linked")); err == nil && string(b) != "SECRET\n" {
				t.Errorf("file linked to env: %q, want it as the step left it", b)
			}
			b := prepareIn(t, ex, runDir, "b")
			t.Cleanup(func() { teardown(t, b) })
			if info, err := os.Stat(b.Dir()); err != nil || info.Mode().Perm() == 0o701 {
				t.Errorf("b's workspace: %v, %v; want it as made", info, err)
			}
			for _, name := range testControlFiles {
				_, err := os.Lstat(filepath.Join(b.TempDir(), name))
				if missing := errors.Is(err, fs.ErrNotExist); missing != slices.Contains(tc.gone, name) {
					t.Errorf("%s missing: %v (%v), want %v", name, missing, err, !missing)
				}
			}
			if info, err := os.Stat(b.TempDir()); err != nil || info.Mode().Perm() != 0o700 {
				t.Errorf("b's temporary directory: %v, %v; want mode 0700", info, err)
			}
		})
	}
}

// A spare directory never takes the place of an existing workspace.
func TestSpareDirsPrepareExisting(t *testing.T) {
	runDir := t.TempDir()
	ex := closedAtEnd(t)
	teardown(t, prepareIn(t, ex, runDir, "a"))
	dir := filepath.Join(runDir, "jobs", "b")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Prepare(context.Background(), executors.JobSpec{RunDir: runDir, Job: "b"}); err == nil {
		t.Fatal("Prepare over an existing (empty) workspace succeeded")
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Errorf("existing workspace now holds %q", got)
	}
}
