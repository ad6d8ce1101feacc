package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/executortest"
	"github.com/nixflow/nixflow/internal/testenv"
)

func newExecutor(t *testing.T) executors.Executor {
	t.Helper()
	ex, err := New(executors.Params{Environ: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func TestConformance(t *testing.T) {
	executortest.Run(t, executortest.Backend{
		New:             newExecutor,
		InheritsHostEnv: true,
		ReadKept: func(t *testing.T, ws executors.Workspace, rel string) ([]byte, error) {
			t.Cleanup(func() { removeTree(ws.Dir()); removeTree(ws.TempDir()) })
			return os.ReadFile(filepath.Join(ws.Dir(), filepath.FromSlash(rel)))
		},
	})
}

func bash(script string) []string {
	return []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script}
}

func prepare(t *testing.T, spec executors.JobSpec) *workspace {
	t.Helper()
	if spec.RunDir == "" {
		spec.RunDir = t.TempDir()
	}
	if spec.Job == "" {
		spec.Job = "job"
	}
	ws, err := closedAtEnd(t).Prepare(context.Background(), spec)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	w := ws.(*workspace)
	t.Cleanup(func() {
		if err := w.Teardown(context.Background(), false); err != nil {
			t.Errorf("Teardown: %v", err)
		}
	})
	return w
}

// closedAtEnd returns an executor that is closed when the test ends,
// after the workspaces prepared later were torn down.
func closedAtEnd(tb testing.TB) *Executor {
	x := &Executor{}
	tb.Cleanup(func() {
		if err := x.Close(context.Background()); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return x
}

// run runs script in w and returns its result and output.
func run(t *testing.T, w *workspace, ctx context.Context, script string) (executors.Result, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	res, err := w.Run(ctx, executors.Command{
		Argv: bash(script), Env: os.Environ(), Stdout: &stdout, Stderr: &stderr,
		Stop: func() executors.Signals {
			return executors.Signals{FirstSignalInterrupt: true, InterruptGrace: 100 * time.Millisecond, TerminateGrace: 100 * time.Millisecond}
		},
	})
	if err != nil {
		t.Fatalf("Run(%q): %v", script, err)
	}
	return res, stdout.String(), stderr.String()
}

// processGone reports whether pid is gone or a zombie (which is what a
// killed orphan stays where nothing reaps orphans).
func processGone(pid int) bool {
	buf := make([]byte, 512)
	return gone(pid, &buf)
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestPrepareLayout(t *testing.T) {
	runDir := t.TempDir()
	w := prepare(t, executors.JobSpec{RunDir: runDir, Job: "build"})
	if want := filepath.Join(runDir, "jobs", "build"); w.Dir() != want {
		t.Errorf("Dir() = %q, want %q", w.Dir(), want)
	}
	if want := filepath.Join(runDir, "tmp", "build"); w.TempDir() != want {
		t.Errorf("TempDir() = %q, want %q", w.TempDir(), want)
	}
	fi, err := os.Stat(w.TempDir())
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("TempDir mode %v, %v; want 0700", fi.Mode(), err)
	}
	entries, err := os.ReadDir(w.Dir())
	if err != nil || len(entries) != 0 {
		t.Errorf("workspace without CopyRepo: %v, %v; want empty", entries, err)
	}

	// A second Prepare of the same job fails and leaves the first alone.
	if err := os.WriteFile(filepath.Join(w.Dir(), "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Executor{}).Prepare(context.Background(), executors.JobSpec{RunDir: runDir, Job: "build"}); err == nil {
		t.Errorf("second Prepare of the same job succeeded")
	}
	if _, err := os.Stat(filepath.Join(w.Dir(), "f")); err != nil {
		t.Errorf("failed Prepare damaged the existing workspace: %v", err)
	}

	for _, job := range []string{"", ".", "..", "a/b"} {
		if _, err := (&Executor{}).Prepare(context.Background(), executors.JobSpec{RunDir: runDir, Job: job}); err == nil {
			t.Errorf("Prepare of job %q succeeded", job)
		}
	}
}

func TestPrepareFailureCleansUp(t *testing.T) {
	runDir := t.TempDir()
	_, err := (&Executor{}).Prepare(context.Background(), executors.JobSpec{
		RunDir: runDir, Job: "j", CopyRepo: true, RepoDir: filepath.Join(runDir, "no-such-repo"),
	})
	if err == nil {
		t.Fatal("Prepare with a missing repository succeeded")
	}
	for _, p := range []string{"jobs/j", "tmp/j"} {
		if _, err := os.Lstat(filepath.Join(runDir, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind after a failed Prepare (%v)", p, err)
		}
	}
}

func TestTeardownKeep(t *testing.T) {
	runDir := t.TempDir()
	ws, err := closedAtEnd(t).Prepare(context.Background(), executors.JobSpec{RunDir: runDir, Job: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	w := ws.(*workspace)
	if _, _, stderr := run(t, w, context.Background(), `echo hi > file`); stderr != "" {
		t.Fatal(stderr)
	}
	if err := os.WriteFile(filepath.Join(w.TempDir(), "ctl"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.Teardown(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(w.Dir(), "file")); err != nil || string(b) != "hi\n" {
		t.Errorf("kept workspace: %q, %v", b, err)
	}
	// The temp dir holds control files that may carry secrets: it goes
	// even when the workspace is kept.
	if _, err := os.Stat(w.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary directory kept with the workspace (%v)", err)
	}
	if _, err := w.Run(context.Background(), executors.Command{Argv: bash("true")}); err == nil {
		t.Errorf("Run after Teardown succeeded")
	}
	// Tearing down again without keep removes it.
	if err := w.Teardown(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{w.Dir(), w.TempDir()} {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there (%v)", d, err)
		}
	}
}

func TestTeardownReadOnly(t *testing.T) {
	w := prepare(t, executors.JobSpec{})
	res, _, stderr := run(t, w, context.Background(), `mkdir -p a/b/c; touch a/b/c/f; chmod 0 a/b/c; chmod 0500 a/b a`)
	if res.ExitCode != 0 {
		t.Fatal(stderr)
	}
	if err := w.Teardown(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(w.Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("workspace still there (%v)", err)
	}
}

func TestRunErrors(t *testing.T) {
	w := prepare(t, executors.JobSpec{})
	ctx := context.Background()
	if _, err := w.Run(ctx, executors.Command{Argv: []string{"no-such-program-nixflow"}, Env: []string{"PATH=/usr/bin:/bin"}}); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("Run of a missing program: %v, want exec.ErrNotFound", err)
	}
	if _, err := w.Run(ctx, executors.Command{}); err == nil {
		t.Errorf("Run of an empty command succeeded")
	}
	for _, dir := range []string{"../x", "/tmp"} {
		if _, err := w.Run(ctx, executors.Command{Argv: bash("true"), Dir: dir}); err == nil {
			t.Errorf("Run in %q succeeded", dir)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	stops := 0
	res, err := w.Run(cancelled, executors.Command{Argv: bash("touch started"), Env: os.Environ(), Stop: func() executors.Signals {
		stops++
		return executors.Signals{}
	}})
	if err != nil || !res.Stopped {
		t.Errorf("Run with a cancelled context: %+v, %v; want stopped", res, err)
	}
	if _, err := os.Stat(filepath.Join(w.Dir(), "started")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Run with a cancelled context started the step")
	}
}

func TestRunLooksUpStepPath(t *testing.T) {
	w := prepare(t, executors.JobSpec{})
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "nixflow-tool"), []byte("#!/bin/sh\necho from step PATH\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := w.Run(context.Background(), executors.Command{Argv: []string{"nixflow-tool"}, Env: []string{"PATH=" + bin}, Stdout: &out})
	if err != nil || res.ExitCode != 0 || out.String() != "from step PATH\n" {
		t.Errorf("Run: %+v, %v, %q", res, err, out.String())
	}
}

// TestRunRemembersProgram: the executor remembers where a step's program
// was found in its PATH, as bash's hash table does. A program of the same
// name put later into a directory earlier in PATH is not seen while the
// remembered one is still there; once that one is gone, the PATH is
// searched again. Another PATH is searched apart.
func TestRunRemembersProgram(t *testing.T) {
	w := prepare(t, executors.JobSpec{})
	first, second := t.TempDir(), t.TempDir()
	tool := func(dir, says string) string {
		p := filepath.Join(dir, "nixflow-tool")
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+says+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	runTool := func(path string) string {
		t.Helper()
		var out bytes.Buffer
		res, err := w.Run(context.Background(), executors.Command{Argv: []string{"nixflow-tool"}, Env: []string{"PATH=" + path}, Stdout: &out})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("Run with PATH=%s: %+v, %v", path, res, err)
		}
		return strings.TrimSpace(out.String())
	}
	path := first + ":" + second
	inSecond := tool(second, "second")
	if got := runTool(path); got != "second" {
		t.Fatalf("first run: %q, want second", got)
	}
	tool(first, "first")
	if got := runTool(path); got != "second" {
		t.Errorf("with a new program earlier in PATH: %q, want the remembered second", got)
	}
	if got := runTool(first); got != "first" {
		t.Errorf("with another PATH: %q, want first", got)
	}
	if err := os.Remove(inSecond); err != nil {
		t.Fatal(err)
	}
	if got := runTool(path); got != "first" {
		t.Errorf("once the remembered program is gone: %q, want first", got)
	}
	// A program that is no longer executable is not taken either.
	tool(second, "second again")
	if got := runTool(second + ":" + first); got != "second again" {
		t.Fatalf("PATH the other way round: %q", got)
	}
	if err := os.Chmod(filepath.Join(second, "nixflow-tool"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := runTool(second + ":" + first); got != "first" {
		t.Errorf("once the remembered program is not executable: %q, want first", got)
	}
}

// failingWriter fails every write.
type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, errors.New("disk full")
}

func TestRunWriterError(t *testing.T) {
	w := prepare(t, executors.JobSpec{})
	fw := &failingWriter{}
	res, err := w.Run(context.Background(), executors.Command{Argv: bash("seq 1 200000; echo done >&2"), Env: os.Environ(), Stdout: fw, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Run: %v, want the writer's error", err)
	}
	if res.ExitCode != 0 || fw.n != 1 {
		t.Errorf("Run: %+v, %d writes; want exit 0 (output drained) and one write", res, fw.n)
	}
}

func TestCancelKillsGrandchild(t *testing.T) {
	w := prepare(t, executors.JobSpec{})
	ctx, cancel := context.WithCancel(context.Background())
	pidFile := filepath.Join(w.Dir(), "gc.pid")
	done := make(chan executors.Result, 1)
	go func() {
		res, _, _ := run(t, w, ctx, `mkfifo ready; bash -c 'trap "" INT TERM; echo $$ > gc.pid; echo > ready; exec sleep 1000' & read -r _ < ready; echo started > started; wait`)
		done <- res
	}()
	testenv.WaitForFile(t, filepath.Join(w.Dir(), "started"))
	pid := readPID(t, pidFile)
	cancel()
	res := <-done
	if !res.Stopped {
		t.Errorf("Run: %+v, want stopped", res)
	}
	if !processGone(pid) {
		t.Errorf("grandchild %d survived", pid)
	}
}

// TestDrainIsBounded: an escapee beyond reach that holds the step's
// standard output, quiet or writing all the time (the copier then never
// finds the pipe empty), does not hold up the end of the step for more
// than the drain timeout.
func TestDrainIsBounded(t *testing.T) {
	setsid, err := exec.LookPath("setsid")
	if err != nil {
		t.Skip("setsid not found")
	}
	for _, tc := range []struct{ name, cmd string }{
		{"quiet", "exec sleep 1000"},
		// (Writing on once its pipe is closed: not killed by SIGPIPE.)
		{"writing", `trap "" PIPE; while :; do echo escaped; done 2>/dev/null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := prepare(t, executors.JobSpec{})
			w.drainTimeout = 300 * time.Millisecond
			w.noCgroup = true // a cgroup would find the escapee (TestCgroupCatchesEscapee)
			// An escapee that cleared its environment, so that the cookie
			// cannot find it, holding standard output.
			var stdout countingWriter
			start := time.Now()
			res, err := w.Run(context.Background(), executors.Command{
				Argv: bash(`mkfifo ready
env -i ` + setsid + ` bash -c 'echo $$ > esc.pid; echo > ready; ` + tc.cmd + `' &
read -r _ < ready`),
				Env: os.Environ(), Stdout: &stdout,
			})
			elapsed := time.Since(start)
			pid := readPID(t, filepath.Join(w.Dir(), "esc.pid"))
			defer syscall.Kill(pid, syscall.SIGKILL)
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("Run: %+v, %v", res, err)
			}
			if elapsed > 5*time.Second {
				t.Errorf("Run took %v with an escapee holding its output", elapsed)
			}
			if processGone(pid) {
				t.Errorf("escapee without cookie was found: the test is void")
			}
			if n := stdout.n.Load(); tc.name == "writing" && n == 0 {
				t.Errorf("nothing of the escapee's output was passed on")
			}
		})
	}
}

// countingWriter counts what it is given, and drops it.
type countingWriter struct{ n atomic.Int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// git runs git in dir for a test, with no global or system configuration.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=trunk"}, args...)...)
	cmd.Env = append(gitEnviron(os.Environ()), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// gitMaybe runs git and returns its output and whether it succeeded.
func gitMaybe(dir string, args ...string) (string, bool) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(gitEnviron(os.Environ()), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	return string(out), err == nil
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not found")
	}
}

// assertSameGit checks that git sees the same state in both directories.
func assertSameGit(t *testing.T, repo, ws string) {
	t.Helper()
	for _, args := range [][]string{
		{"status", "--porcelain=v1", "--untracked-files=all"},
		{"rev-parse", "--verify", "-q", "HEAD"},
		{"symbolic-ref", "-q", "HEAD"},
		{"diff", "HEAD"},
		{"diff", "--cached"},
	} {
		want, wantOK := gitMaybe(repo, args...)
		got, gotOK := gitMaybe(ws, args...)
		if got != want || gotOK != wantOK {
			t.Errorf("git %s:\nworkspace (%v):\n%s\nrepository (%v):\n%s", strings.Join(args, " "), gotOK, got, wantOK, want)
		}
	}
}

func assertFiles(t *testing.T, dir string, present map[string]string, absent []string) {
	t.Helper()
	for name, want := range present {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	for _, name := range absent {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: present (%v), want absent", name, err)
		}
	}
}

func TestCopyRepo(t *testing.T) {
	requireGit(t)
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	writeFiles(t, repo, map[string]string{
		"modified.txt": "original\n", "deleted.txt": "deleted\n", "same.txt": "same\n",
		"staged.txt": "before\n", "dir/sub/deep.txt": "deep\n", "script.sh": "#!/bin/sh\n",
		".gitignore": "*.log\nbuild/\n",
	})
	if err := os.Chmod(filepath.Join(repo, "script.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("same.txt", filepath.Join(repo, "link")); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "initial")
	git(t, repo, "checkout", "-q", "-b", "feature")
	writeFiles(t, repo, map[string]string{
		"modified.txt": "changed\n", "untracked.txt": "new\n", "ignored.log": "log\n",
		"build/out.bin": "bin\n", "staged.txt": "after\n", "added.txt": "added\n",
		"dir/untracked/u.txt": "u\n",
	})
	git(t, repo, "add", "staged.txt", "added.txt")
	if err := os.Remove(filepath.Join(repo, "deleted.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(repo, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}

	w := prepare(t, executors.JobSpec{CopyRepo: true, RepoDir: repo})
	assertFiles(t, w.Dir(), map[string]string{
		"modified.txt": "changed\n", "same.txt": "same\n", "untracked.txt": "new\n",
		"staged.txt": "after\n", "added.txt": "added\n", "dir/sub/deep.txt": "deep\n",
		"dir/untracked/u.txt": "u\n", ".gitignore": "*.log\nbuild/\n",
	}, []string{"deleted.txt", "ignored.log", "build", "emptydir"})
	if fi, err := os.Stat(filepath.Join(w.Dir(), "script.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("script.sh: mode %v, %v; want 0755", fi.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(w.Dir(), "link")); err != nil || target != "same.txt" {
		t.Errorf("link: %q, %v; want a symbolic link to same.txt", target, err)
	}
	assertSameGit(t, repo, w.Dir())

	// git works in the copy, from a step too, without touching the source.
	res, stdout, stderr := run(t, w, context.Background(), `git add -A && git -c user.name=T -c user.email=t@example.com commit -q -m step && git rev-parse --abbrev-ref HEAD`)
	if res.ExitCode != 0 || stdout != "feature\n" {
		t.Errorf("git in a step: %+v %q %q", res, stdout, stderr)
	}
	if st, _ := gitMaybe(repo, "status", "--porcelain"); !strings.Contains(st, "M  staged.txt") {
		t.Errorf("the source's status changed:\n%s", st)
	}
}

func TestCopyRepoDetachedHead(t *testing.T) {
	requireGit(t)
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	writeFiles(t, repo, map[string]string{"a": "1\n"})
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "one")
	writeFiles(t, repo, map[string]string{"a": "2\n"})
	git(t, repo, "commit", "-q", "-am", "two")
	git(t, repo, "checkout", "-q", "--detach", "HEAD~1")
	w := prepare(t, executors.JobSpec{CopyRepo: true, RepoDir: repo})
	assertFiles(t, w.Dir(), map[string]string{"a": "1\n"}, nil)
	assertSameGit(t, repo, w.Dir())
}

func TestCopyRepoWorktree(t *testing.T) {
	requireGit(t)
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	writeFiles(t, repo, map[string]string{"a": "1\n"})
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "one")
	wt := filepath.Join(t.TempDir(), "wt")
	git(t, repo, "worktree", "add", "-q", "-b", "side", wt)
	writeFiles(t, wt, map[string]string{"a": "2\n", "u": "u\n"})
	w := prepare(t, executors.JobSpec{CopyRepo: true, RepoDir: wt})
	assertFiles(t, w.Dir(), map[string]string{"a": "2\n", "u": "u\n"}, nil)
	assertSameGit(t, wt, w.Dir())
}

func TestCopyRepoNoCommits(t *testing.T) {
	requireGit(t)
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	git(t, repo, "checkout", "-q", "-b", "unborn")
	writeFiles(t, repo, map[string]string{"staged.txt": "s\n", "untracked.txt": "u\n", ".gitignore": "x\n", "x": "ignored\n"})
	git(t, repo, "add", "staged.txt")
	w := prepare(t, executors.JobSpec{CopyRepo: true, RepoDir: repo})
	assertFiles(t, w.Dir(), map[string]string{"staged.txt": "s\n", "untracked.txt": "u\n"}, []string{"x"})
	assertSameGit(t, repo, w.Dir())
}

func TestCopyRepoEmpty(t *testing.T) {
	requireGit(t)
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	w := prepare(t, executors.JobSpec{CopyRepo: true, RepoDir: repo})
	assertSameGit(t, repo, w.Dir())
}

func TestCopyRepoSubdirectory(t *testing.T) {
	requireGit(t)
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	writeFiles(t, repo, map[string]string{"top.txt": "top\n", "sub/in.txt": "in\n", "sub/.gitignore": "*.o\n"})
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "one")
	writeFiles(t, repo, map[string]string{"sub/new.txt": "new\n", "sub/x.o": "obj\n"})
	w := prepare(t, executors.JobSpec{CopyRepo: true, RepoDir: filepath.Join(repo, "sub")})
	assertFiles(t, w.Dir(), map[string]string{"in.txt": "in\n", "new.txt": "new\n"}, []string{"top.txt", "x.o", "sub"})
}

func TestCopyRepoRunDirInside(t *testing.T) {
	requireGit(t)
	for _, withGit := range []bool{true, false} {
		t.Run("git="+strconv.FormatBool(withGit), func(t *testing.T) {
			repo := t.TempDir()
			if withGit {
				git(t, repo, "init", "-q")
			}
			writeFiles(t, repo, map[string]string{"a.txt": "a\n", "state/other-run/x": "x\n"})
			runDir := filepath.Join(repo, "state", "run")
			w := prepare(t, executors.JobSpec{CopyRepo: true, RepoDir: repo, RunDir: runDir})
			assertFiles(t, w.Dir(), map[string]string{"a.txt": "a\n", "state/other-run/x": "x\n"}, []string{"state/run"})
		})
	}
}

func TestCopyRepoUntrusted(t *testing.T) {
	requireGit(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give the repository to another user")
	}
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	writeFiles(t, repo, map[string]string{"a": "a\n"})
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 65534, 65534)
	})
	if err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	_, err = (&Executor{}).Prepare(context.Background(), executors.JobSpec{RunDir: runDir, Job: "j", CopyRepo: true, RepoDir: repo})
	if err == nil || !strings.Contains(err.Error(), "dubious ownership") {
		t.Errorf("Prepare from a repository git does not trust: %v, want git's error", err)
	}
}

func TestCopyNonGitDirectory(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"a.txt": "a\n", "d/e/f.txt": "f\n", ".hidden": "h\n", "x.log": "kept: no .gitignore here\n"})
	for _, d := range []string{"empty", "d/empty"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "a.txt"), 0o751); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../a.txt", filepath.Join(src, "d/link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := prepare(t, executors.JobSpec{CopyRepo: true, RepoDir: src})
	if err := os.Remove(filepath.Join(src, "fifo")); err != nil {
		t.Fatal(err)
	}
	got, want := treeOf(t, w.Dir()), treeOf(t, src)
	delete(got, ".")
	delete(want, ".")
	if len(got) != len(want) {
		t.Errorf("copied %d entries, want %d:\n%v\n%v", len(got), len(want), got, want)
	}
	for name, e := range want {
		if got[name] != e {
			t.Errorf("%s: %+v, want %+v", name, got[name], e)
		}
	}
}

type fileEntry struct {
	mode fs.FileMode
	data string
}

func treeOf(t *testing.T, root string) map[string]fileEntry {
	t.Helper()
	m := map[string]fileEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		e := fileEntry{mode: info.Mode()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.data, err = os.Readlink(p)
		case info.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(p)
			e.data = string(b)
		}
		m[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCopyInStaysInside(t *testing.T) {
	w := prepare(t, executors.JobSpec{})
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(w.Dir(), "escape")); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.CopyIn(context.Background(), f, "escape/f"); err == nil {
		t.Errorf("CopyIn through a symbolic link out of the workspace succeeded")
	}
	if _, err := os.Lstat(filepath.Join(outside, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CopyIn wrote outside the workspace")
	}
}

// BenchmarkRunTrue measures the overhead of a step: Run of bash -c true.
func BenchmarkRunTrue(b *testing.B) {
	ws, err := closedAtEnd(b).Prepare(context.Background(), executors.JobSpec{RunDir: b.TempDir(), Job: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Teardown(context.Background(), false)
	cmd := executors.Command{Argv: bash("true"), Env: os.Environ(), Stdout: io.Discard, Stderr: io.Discard}
	for b.Loop() {
		res, err := ws.Run(context.Background(), cmd)
		if err != nil || res.ExitCode != 0 {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkExecTrue is the baseline of BenchmarkRunTrue: bash -c true
// with os/exec alone.
func BenchmarkExecTrue(b *testing.B) {
	for b.Loop() {
		cmd := exec.Command("bash", bash("true")[1:]...)
		cmd.Env = os.Environ()
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunOutput measures output throughput.
func BenchmarkRunOutput(b *testing.B) {
	ws, err := closedAtEnd(b).Prepare(context.Background(), executors.JobSpec{RunDir: b.TempDir(), Job: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Teardown(context.Background(), false)
	const size = 256 << 20
	cmd := executors.Command{Argv: bash("head -c " + strconv.Itoa(size) + " /dev/zero"), Env: os.Environ(), Stdout: io.Discard, Stderr: io.Discard}
	b.SetBytes(size)
	for b.Loop() {
		res, err := ws.Run(context.Background(), cmd)
		if err != nil || res.ExitCode != 0 {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkProcScan measures a scan of /proc for a step's cookie, with the
// processes there are and with 500 more: a full scan, and one of the
// processes started since the scan's step started (none here).
func BenchmarkProcScan(b *testing.B) {
	bench := func(b *testing.B) {
		pids, err := procPIDs()
		if err != nil {
			b.Fatal(err)
		}
		s := newCookieScan(newCookie())
		for _, full := range []bool{true, false} {
			name := "window"
			if full {
				name = "full"
			}
			b.Run(name, func(b *testing.B) {
				after, ok := lastPID()
				if !ok {
					b.Fatal("no /proc/loadavg")
				}
				for b.Loop() {
					if found, _, _ := s.find(after, full); len(found) != 0 {
						b.Fatal(found)
					}
				}
				b.ReportMetric(float64(len(pids)), "procs")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(pids)), "ns/proc")
			})
		}
	}
	b.Run("current", bench)
	b.Run("plus500", func(b *testing.B) {
		var cmds []*exec.Cmd
		defer func() {
			for _, c := range cmds {
				c.Process.Kill()
				c.Wait()
			}
		}()
		for range 500 {
			c := exec.Command("sleep", "1000")
			if err := c.Start(); err != nil {
				b.Fatal(err)
			}
			cmds = append(cmds, c)
		}
		bench(b)
	})
}

func TestAllocatedBetween(t *testing.T) {
	for _, c := range []struct {
		pid, after, last int
		want             bool
	}{
		{10, 5, 20, true}, {5, 5, 20, false}, {20, 5, 20, true}, {21, 5, 20, false}, {3, 5, 20, false},
		{32000, 31000, 100, true}, {50, 31000, 100, true}, {101, 31000, 100, false}, {31000, 31000, 100, false},
	} {
		if got := allocatedBetween(c.pid, c.after, c.last); got != c.want {
			t.Errorf("allocatedBetween(%d, %d, %d) = %v, want %v", c.pid, c.after, c.last, got, c.want)
		}
	}
}

func TestParseStat(t *testing.T) {
	st, ok := parseStat([]byte("1234 (a) b) (c) S 1 4321 4321 0 -1 4194560 113 0 0 0\n"))
	if want := (procStat{state: 'S', pgrp: 4321, flags: 4194560}); !ok || st != want {
		t.Errorf("parseStat: %+v, %v; want %+v", st, ok, want)
	}
	if _, ok := parseStat([]byte("1234 (a) S 1")); ok {
		t.Errorf("parseStat of a short line succeeded")
	}
	// A kernel thread, as seen here.
	data, err := os.ReadFile("/proc/2/stat")
	if err == nil {
		if st, ok := parseStat(data); !ok || st.flags&pfKthread == 0 {
			t.Errorf("parseStat(%q): %+v, %v; want a kernel thread", data, st, ok)
		}
	}
}

// TestCookieFindsEscapee: without a cgroup, a process that left the
// step's process group but kept its environment is found by the step's
// cookie, among the pids allocated during the step, and killed when the
// step ends on its own.
func TestCookieFindsEscapee(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("no /proc")
	}
	setsid, err := exec.LookPath("setsid")
	if err != nil {
		t.Skip("setsid not found")
	}
	w := prepare(t, executors.JobSpec{})
	w.noCgroup = true
	assertEscapeeKilled(t, w, setsid)
}

// TestProgCacheBounded: jobs that each have a PATH of their own do not
// make the executor remember without bound.
func TestProgCacheBounded(t *testing.T) {
	var c progCache
	for i := 0; i < 10*maxProgs; i++ {
		c.put(progKey{"bash", fmt.Sprintf("/job%d/bin:/usr/bin", i)}, "/usr/bin/bash")
		if len(c.m) > maxProgs {
			t.Fatalf("%d programs remembered after %d puts, want at most %d", len(c.m), i+1, maxProgs)
		}
	}
	if p, ok := c.get(progKey{"bash", fmt.Sprintf("/job%d/bin:/usr/bin", 10*maxProgs-1)}); !ok || p != "/usr/bin/bash" {
		t.Errorf("the last program put is not remembered: %q, %v", p, ok)
	}
}
