package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/executortest"
	"github.com/nixflow/nixflow/executors/local"
	"github.com/nixflow/nixflow/internal/ocitest"
	"github.com/nixflow/nixflow/internal/testenv"
)

// runtimes are the container runtimes the tests run on.
var runtimes = []string{"docker", "podman"}

func TestMain(m *testing.M) {
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range runtimes {
		if _, err := exec.LookPath(name); err != nil {
			continue
		}
		c := &cli{name: name, path: name}
		// Containers of this process the tests did not remove are a
		// failure of the executor: say so, then remove them.
		out, _ := c.output(ctx, nil, "ps", "--all", "--quiet", "--filter", "label="+LabelOwnerPID+"="+strconv.Itoa(os.Getpid()))
		if ids := strings.Fields(out); len(ids) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %s containers left behind: %v\n", name, ids)
			_ = c.remove(ctx, ids...)
			code = 1
		}
	}
	if err := ocitest.Remove(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// needRuntime skips or fails t without the runtime, and returns a client
// for it and its test image.
func needRuntime(t *testing.T, name string) (*cli, string) {
	t.Helper()
	testenv.NeedCommand(t, name, name)
	c, err := probe(context.Background(), name, nil)
	testenv.Need(t, name, err == nil, fmt.Sprint(err))
	ref, err := ocitest.Image(name)
	if err != nil {
		t.Fatal(err)
	}
	return c, ref
}

// newExecutor returns an executor on runtime name for cfg, whose image
// defaults to the test image.
func newExecutor(t *testing.T, name string, cfg compiler.OCIExecutor) *Executor {
	t.Helper()
	c, ref := needRuntime(t, name)
	if cfg.Image == "-" {
		cfg.Image = ""
	} else if cfg.Image == "" {
		cfg.Image = ref
	}
	cfg.Runtime = name
	x, err := New(executors.Params{Config: &cfg, RunID: "test", Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})})
	if err != nil {
		t.Fatal(err)
	}
	// The runtime is known and swept (TestSweep, the run_oci_kill9
	// script): each executor need not find it again.
	e := x.(*Executor)
	e.cli, e.swept = c, true
	return e
}

func TestConformance(t *testing.T) {
	for _, rt := range runtimes {
		// Not in parallel: the suite sets environment variables.
		t.Run(rt, func(t *testing.T) {
			needRuntime(t, rt)
			executortest.Run(t, executortest.Backend{
				New: func(t *testing.T) executors.Executor { return newExecutor(t, rt, compiler.OCIExecutor{}) },
				ReadKept: func(t *testing.T, ws executors.Workspace, rel string) ([]byte, error) {
					w := ws.(*workspace)
					t.Cleanup(func() { os.RemoveAll(w.hostDir) })
					return os.ReadFile(filepath.Join(w.hostDir, filepath.FromSlash(rel)))
				},
			})
		})
	}
}

// containersOf lists the containers of run runID, removed or not.
func containersOf(t *testing.T, c *cli, runID string) []string {
	t.Helper()
	out, err := c.output(context.Background(), nil, "ps", "--all", "--quiet", "--filter", "label="+LabelRun+"="+runID)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

// run runs script in ws and returns its exit status and output.
func run(t *testing.T, ws executors.Workspace, script string, env ...string) (int, string) {
	t.Helper()
	var out executortest.Output
	res, err := ws.Run(context.Background(), executors.Command{
		Argv: []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script},
		Env:  env, Stdout: &out, Stderr: &out,
	})
	if err != nil {
		t.Fatalf("Run(%q): %v", script, err)
	}
	return res.ExitCode, out.String()
}

func prepare(t *testing.T, x executors.Executor, spec executors.JobSpec) executors.Workspace {
	t.Helper()
	if spec.RunDir == "" {
		spec.RunDir = t.TempDir()
	}
	if spec.RunID == "" {
		spec.RunID = "test"
	}
	ws, err := x.Prepare(context.Background(), spec)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(func() {
		if err := ws.Teardown(context.Background(), false); err != nil {
			t.Errorf("Teardown: %v", err)
		}
	})
	return ws
}

// TestHungExecClient: a runtime client that never starts the step (a
// daemon that does not answer) does not hold a stopped Run: once the stop
// would have ended, the client is killed and Run returns, stopped.
func TestHungExecClient(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			x := newExecutor(t, rt, compiler.OCIExecutor{})
			dir := t.TempDir()
			fake, pidFile := filepath.Join(dir, rt), filepath.Join(dir, "client.pid")
			// The real client, but for the step's exec, which hangs, and
			// which a slow daemon starts all the same, 2 s later.
			script := "#!/bin/sh\nfor a; do case $a in nixflow-step)\n" +
				"  setsid sh -c 'sleep 2; exec \"$0\" \"$@\"' " + x.cli.path + " \"$@\" </dev/null >/dev/null 2>&1 &\n" +
				"  echo $$ > " + pidFile + "; exec sleep 600;; esac; done\nexec " + x.cli.path + " \"$@\"\n"
			if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			real, fc := x.cli, *x.cli
			fc.path = fake
			x.cli = &fc
			ws := prepare(t, x, executors.JobSpec{Job: "hung"})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			var res executors.Result
			go func() {
				var err error
				res, err = ws.Run(ctx, executors.Command{
					Argv: []string{"bash", "-c", "touch ran"}, Stdout: io.Discard, Stderr: io.Discard,
					Stop: func() executors.Signals {
						return executors.Signals{TerminateGrace: 100 * time.Millisecond}
					},
				})
				done <- err
			}()
			testenv.WaitForFile(t, pidFile)
			cancel()
			select {
			case err := <-done:
				if err != nil || !res.Stopped {
					t.Errorf("Run: %+v, %v; want stopped", res, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return 30 s after it was stopped")
			}
			data, _ := os.ReadFile(pidFile)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
			if pid > 0 && syscall.Kill(pid, 0) == nil {
				t.Errorf("the hung client %d was left running", pid)
			}
			// The exec the daemon started late did not run the step.
			ws.(*workspace).cli = real
			time.Sleep(3 * time.Second)
			if code, out := run(t, ws, `test -e ran && echo the step ran; true`); code != 0 || out != "" {
				t.Errorf("after the late exec: %q", out)
			}
		})
	}
}

// TestBashVariableNames: declared names that are bash's own variables
// reach the step as values (RANDOM, GROUPS, BASH_ARGV0: unset first in the
// wrapper, which would otherwise give them its meaning), or, for those no
// bash can set (UID, SHELLOPTS), are left out without a word in the
// step's output, and without the wrapper's own SHELLOPTS.
func TestBashVariableNames(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			ws := prepare(t, newExecutor(t, rt, compiler.OCIExecutor{}), executors.JobSpec{Job: "bash-names"})
			var stdout, stderr executortest.Output
			res, err := ws.Run(context.Background(), executors.Command{
				Argv: []string{"bash", "--noprofile", "--norc", "-c", `mapfile -d '' e </proc/$$/environ
for n in RANDOM GROUPS BASH_ARGV0 UID SHELLOPTS; do for kv in "${e[@]}"; do [[ $kv == "$n="* ]] && echo "$kv"; done; done; true`},
				Env:    []string{"RANDOM=5", "GROUPS=1", "BASH_ARGV0=q", "UID=77", "SHELLOPTS=xtrace"},
				Stdout: &stdout, Stderr: &stderr,
			})
			if err != nil || res.ExitCode != 0 || stdout.String() != "RANDOM=5\nGROUPS=1\nBASH_ARGV0=q\n" || stderr.String() != "" {
				t.Errorf("exit %d, err %v, stdout %q, stderr %q", res.ExitCode, err, stdout.String(), stderr.String())
			}
		})
	}
}

// TestContainerBashEnv: a BASH_ENV of the container's (an image's ENV, a
// --env option) that prints is read by the step's bash, as a local step's
// is, and not by the executor's wrapper, whose first line of output is
// the step's pid.
func TestContainerBashEnv(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			vol := t.TempDir()
			os.WriteFile(filepath.Join(vol, "benv"), []byte("echo from-bash-env\n"), 0o644)
			x := newExecutor(t, rt, compiler.OCIExecutor{
				Volumes: []string{vol + ":/vol:ro"},
				Options: []string{"--env", "BASH_ENV=/vol/benv"},
			})
			ws := prepare(t, x, executors.JobSpec{Job: "bash-env"})
			if code, out := run(t, ws, `echo step`); code != 0 || out != "from-bash-env\nstep\n" {
				t.Errorf("exit %d, output %q", code, out)
			}
		})
	}
}

// TestImageEnvAndOptions checks what a step sees: the image's ENV below
// the declared env, the workdir, the user, volumes and labels.
func TestImageEnvAndOptions(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			c, _ := needRuntime(t, rt)
			vol := t.TempDir()
			os.WriteFile(filepath.Join(vol, "v"), []byte("from volume"), 0o644)
			x := newExecutor(t, rt, compiler.OCIExecutor{
				User: "1000:1000", Workdir: "/src", Volumes: []string{vol + ":/vol:ro"},
				Options: []string{"--hostname", "nixflow-t"},
			})
			runID := "test-options-" + rt + strconv.Itoa(os.Getpid())
			ws := prepare(t, x, executors.JobSpec{RunID: runID, Job: "opts"})
			code, out := run(t, ws, `echo "$NIXFLOW_T_IMAGE $OVER $(id -u):$(id -g) $PWD $(cat /vol/v) $(hostname)"; echo made > file; test -w "$T"`,
				"OVER=declared", "T="+ws.TempDir())
			if want := "from-image declared 1000:1000 /src from volume nixflow-t\n"; code != 0 || out != want {
				t.Errorf("exit %d, output %q, want %q", code, out, want)
			}
			// What CopyIn brings, with the directories it makes, is the
			// user's too.
			if err := ws.CopyIn(context.Background(), filepath.Join(vol, "v"), "in/sub/v"); err != nil {
				t.Fatal(err)
			}
			if code, out := run(t, ws, `echo more >> in/sub/v && touch in/sub/new && cat in/sub/v`); code != 0 || out != "from volumemore\n" {
				t.Errorf("writing what CopyIn brought: exit %d, %q", code, out)
			}
			_, out = run(t, ws, `echo $NIXFLOW_T_IMAGE`, "NIXFLOW_T_IMAGE=declared wins")
			if out != "declared wins\n" {
				t.Errorf("declared env over the image's: %q", out)
			}
			ids := containersOf(t, c, runID)
			if len(ids) != 1 {
				t.Fatalf("containers of the run: %v", ids)
			}
			out, err := c.output(context.Background(), nil, "container", "inspect", "--format",
				`{{index .Config.Labels "`+LabelJob+`"}} {{index .Config.Labels "`+LabelOwnerPID+`"}}`, ids[0])
			if want := "opts " + strconv.Itoa(os.Getpid()) + "\n"; err != nil || out != want {
				t.Errorf("labels: %q, %v; want %q", out, err, want)
			}
			if err := ws.Teardown(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			if ids := containersOf(t, c, runID); len(ids) != 0 {
				t.Errorf("containers left after Teardown: %v", ids)
			}
		})
	}
}

// TestSharedMode checks that jobs of a shared executor run in one
// container, each in its own directory, and that Close removes it.
func TestSharedMode(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			c, _ := needRuntime(t, rt)
			x := newExecutor(t, rt, compiler.OCIExecutor{Mode: "shared"})
			runID := "test-shared-" + rt + strconv.Itoa(os.Getpid())
			runDir := t.TempDir()
			a := prepare(t, x, executors.JobSpec{RunID: runID, RunDir: runDir, Job: "a"})
			b := prepare(t, x, executors.JobSpec{RunID: runID, RunDir: runDir, Job: "b"})
			if a.Where() != b.Where() {
				t.Errorf("not one container: %q, %q", a.Where(), b.Where())
			}
			if a.Dir() != "/workspace/a" || b.Dir() != "/workspace/b" {
				t.Errorf("dirs %q, %q", a.Dir(), b.Dir())
			}
			if code, out := run(t, a, `echo a > mine; (trap "" TERM; exec sleep 1000) & echo $! > bg.pid`); code != 0 || out != "" {
				t.Errorf("a: exit %d, output %q", code, out)
			}
			// The leftover was killed before Run returned; a killed process
			// may take a moment to die, and then stays a zombie: gone too.
			_, out := run(t, b, `ls; for i in $(seq 50); do case $(grep State: "/proc/$(cat ../a/bg.pid)/status" 2>/dev/null) in ""|*Z*) echo gone; exit 0;; esac; sleep 0.1; done; echo alive; grep State: /proc/$(cat ../a/bg.pid)/status`)
			if out != "gone\n" {
				t.Errorf("b sees %q, want an empty directory and a's leftover gone", out)
			}
			a.Teardown(context.Background(), false)
			b.Teardown(context.Background(), false)
			if ids := containersOf(t, c, runID); len(ids) != 1 {
				t.Errorf("before Close: containers %v, want the shared one", ids)
			}
			if err := x.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if ids := containersOf(t, c, runID); len(ids) != 0 {
				t.Errorf("after Close: containers %v", ids)
			}
		})
	}
}

// TestPrepareCancelledMidway cancels Prepare at each of its progress
// lines in turn (the repository copied, the container being started): it
// fails with context.Canceled, and once the executor is closed no
// container of the run is left, whatever the runtime did after its
// client gave up.
func TestPrepareCancelledMidway(t *testing.T) {
	repo := executortest.MakeRepo(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			c, _ := needRuntime(t, rt)
			for at := 0; ; at++ {
				x := newExecutor(t, rt, compiler.OCIExecutor{})
				runID := fmt.Sprintf("test-midway-%s%d-%d", rt, os.Getpid(), at)
				ctx, cancel := context.WithCancel(context.Background())
				var lines []string
				spec := executors.JobSpec{RunID: runID, RunDir: t.TempDir(), Job: "midway", RepoDir: repo, CopyRepo: true,
					Log: func(m string) {
						lines = append(lines, m)
						if len(lines) == at+1 {
							cancel()
						}
					}}
				ws, err := x.Prepare(ctx, spec)
				cancel()
				if err == nil {
					// Cancelled at no line: every line was passed.
					ws.Teardown(context.Background(), false)
					x.Close(context.Background())
					if at < 2 {
						t.Errorf("Prepare gave %d progress lines %q, want at least 2", len(lines), lines)
					}
					break
				}
				if !errors.Is(err, context.Canceled) {
					t.Errorf("cancelled at %q: Prepare = %v, want context.Canceled", lines[at], err)
				}
				if err := x.Close(context.Background()); err != nil {
					t.Errorf("Close: %v", err)
				}
				if ids := containersOf(t, c, runID); len(ids) != 0 {
					t.Errorf("cancelled at %q: containers left %v", lines[at], ids)
				}
			}
		})
	}
}

// TestPruneClosureImages checks that gc's prune removes the closure
// images no container uses and keeps one a container uses.
func TestPruneClosureImages(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			c, _ := needRuntime(t, rt)
			ctx := context.Background()
			// A value of the test's own: the package's other tests make
			// closure images of their own meanwhile.
			value := "test-prune-" + rt + strconv.Itoa(os.Getpid())
			mk := func(name string) string {
				var tarball bytes.Buffer
				tw := tar.NewWriter(&tarball)
				tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "marker", Mode: 0o644, Size: int64(len(name))})
				tw.Write([]byte(name))
				tw.Close()
				ref := "nixflow-closure:" + value + "-" + name
				if _, err := c.output(ctx, &tarball, "import", "--change", "LABEL "+LabelClosure+"="+value, "-", ref); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.output(context.Background(), nil, "image", "rm", "--force", ref) })
				id, err := c.output(ctx, nil, "image", "inspect", "--format", "{{.Id}}", ref)
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimPrefix(strings.TrimSpace(id), "sha256:")
			}
			unused, used := mk("unused"), mk("used")
			ctr, err := c.output(ctx, nil, "create", used, "/marker")
			if err != nil {
				t.Fatal(err)
			}
			defer c.remove(context.Background(), strings.TrimSpace(ctr))
			n, err := c.pruneClosures(ctx, 0, value)
			if err != nil || n != 1 {
				t.Errorf("pruneClosures = %d, %v; want 1 removed", n, err)
			}
			out, err := c.output(ctx, nil, "image", "ls", "--quiet", "--no-trunc", "--filter", "label="+LabelClosure+"="+value)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, id := range strings.Fields(out) {
				left = append(left, strings.TrimPrefix(id, "sha256:"))
			}
			if slices.Contains(left, unused) || !slices.Contains(left, used) {
				t.Errorf("images left %v; want %s (used) and not %s", left, used, unused)
			}
		})
	}
}

// TestSweep checks that a container whose owner is gone is removed, and
// one whose owner lives is not.
func TestSweep(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			c, ref := needRuntime(t, rt)
			// A process that is gone: a child that exited.
			dead := exec.Command("true")
			if err := dead.Run(); err != nil {
				t.Fatal(err)
			}
			runID := "test-sweep-" + rt + strconv.Itoa(os.Getpid())
			mk := func(pid int, host string) string {
				out, err := c.output(context.Background(), nil, "create", "--label", LabelRun+"="+runID,
					"--label", LabelOwnerPID+"="+strconv.Itoa(pid), "--label", LabelHost+"="+host, ref, "true")
				if err != nil {
					t.Fatal(err)
				}
				id := strings.TrimSpace(out)
				t.Cleanup(func() { c.remove(context.Background(), id) })
				return id
			}
			gone := mk(dead.Process.Pid, hostname())
			live := mk(os.Getpid(), hostname())
			// A nixflow of another PID namespace with this host name (in a
			// CI runner's container): its pid means nothing here.
			h, _ := os.Hostname()
			other := mk(dead.Process.Pid, h+" pid:[1]")
			// An older nixflow's, labelled with the host name alone.
			legacy := mk(dead.Process.Pid, h)
			// What `nixflow gc --dry-run` reports: the containers of owners
			// that are gone, removing none. (Another test's run may sweep
			// them meanwhile: only what it lists is checked.)
			orphans, err := c.orphans(context.Background(), []string{LabelRun + "=" + runID})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range orphans {
				if id != gone && id != legacy {
					t.Errorf("orphans lists %s, not one of a gone owner's (%s, %s)", id, gone, legacy)
				}
			}
			if !slices.Contains(orphans, gone) && slices.Contains(containersOf(t, c, runID), gone[:12]) {
				t.Errorf("orphans %v lacks %s, whose owner is gone", orphans, gone)
			}
			// What `nixflow gc` does: every runtime, every run.
			if _, err := Sweep(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			ids := containersOf(t, c, runID)
			if len(ids) != 2 {
				t.Fatalf("after the sweep: %v, want %s and %s (not %s, %s)", ids, live, other, gone, legacy)
			}
			slices.Sort(ids)
			want := []string{live[:len(ids[0])], other[:len(ids[0])]}
			slices.Sort(want)
			if !slices.Equal(ids, want) {
				t.Errorf("after the sweep: %v, want %v (not %s)", ids, want, gone)
			}
		})
	}
}

// TestErrors checks the executor failures a user can meet, with hints.
func TestErrors(t *testing.T) {
	missingVolume := filepath.Join(t.TempDir(), "none", "sub")
	t.Cleanup(func() { // after the parallel subtests
		if _, err := os.Stat(missingVolume); err == nil {
			t.Errorf("a missing volume's host path was made: %s", missingVolume)
		}
	})
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			needRuntime(t, rt)
			for _, c := range []struct {
				name string
				cfg  compiler.OCIExecutor
				want string
			}{
				{"missing image", compiler.OCIExecutor{Image: "nixflow-no-such-image:1"}, `image "nixflow-no-such-image:1" is not on this machine and could not be pulled`},
				{"no bash", compiler.OCIExecutor{Options: []string{"--env", "PATH=/nowhere"}}, "hint: the image needs bash"},
				{"bad mount", compiler.OCIExecutor{Options: []string{"--mount", "type=bind,source=" + filepath.Join(t.TempDir(), "none") + ",target=/x"}}, "hint: check the executor's volumes"},
				{"no image, no deps", compiler.OCIExecutor{Image: "-"}, "no image given and the steps have no Nix deps"},
				// docker would make the missing directory (root's, empty).
				{"missing volume", compiler.OCIExecutor{Volumes: []string{missingVolume + ":/cache"}}, "volume \"" + missingVolume + ":/cache\": stat " + missingVolume + ": no such file or directory"},
			} {
				x := newExecutor(t, rt, c.cfg)
				ws, err := x.Prepare(context.Background(), executors.JobSpec{RunID: "test-errors", RunDir: t.TempDir(), Job: "e"})
				if err == nil {
					ws.Teardown(context.Background(), false)
					t.Errorf("%s: Prepare succeeded", c.name)
					continue
				}
				if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "hint: ") {
					t.Errorf("%s: error %q, want it to contain %q and a hint", c.name, err, c.want)
				}
			}
			_, err := findRuntime(context.Background(), rt, []string{"PATH=/nowhere"})
			if err == nil || !strings.Contains(err.Error(), "is not on PATH; hint: install") {
				t.Errorf("runtime not on PATH: %v", err)
			}
		})
	}
}

// TestPrepareCancelledRemovesDirs checks that a cancelled Prepare leaves
// no workspace directory behind.
func TestPrepareCancelledRemovesDirs(t *testing.T) {
	x := newExecutor(t, "docker", compiler.OCIExecutor{})
	runDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := x.Prepare(ctx, executors.JobSpec{RunID: "test", RunDir: runDir, Job: "c"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Prepare: %v", err)
	}
	if _, err := os.Stat(filepath.Join(runDir, "jobs", "c")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("workspace left: %v", err)
	}
}

// standIn builds, with Nix, a package whose bin/ holds static busybox
// (with its applets), bash and a tool of its own, nixflow-dep-tool.
func standIn(t *testing.T) string {
	t.Helper()
	testenv.NeedCommand(t, "nix", "nix-build")
	busybox, err1 := exec.LookPath("busybox")
	bash, err2 := exec.LookPath("bash-static")
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("the stand-in needs busybox-static and bash-static: %v", err)
	}
	expr := `derivation {
  name = "nixflow-oci-standin"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" ''
    /bin/mkdir -p $out/bin
    /bin/cp ` + busybox + ` $out/bin/busybox
    /bin/cp ` + bash + ` $out/bin/bash
    for a in $(` + busybox + ` --list); do [ -e $out/bin/$a ] || /bin/ln -s busybox $out/bin/$a; done
    printf '#!/bin/sh\necho from the dep\n' > $out/bin/nixflow-dep-tool
    /bin/chmod 755 $out/bin/nixflow-dep-tool
  '' ];
}`
	return testenv.NixBuild(t, expr)
}

// TestNixDeps checks that the closure of the deps is mounted read-only
// and leads PATH, and that a job with no image runs on a toolchain that
// exists only as a Nix dep.
func TestNixDeps(t *testing.T) {
	dep := standIn(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			for _, image := range []string{"", "-"} {
				x := newExecutor(t, rt, compiler.OCIExecutor{Image: image})
				ws := prepare(t, x, executors.JobSpec{Job: "deps", StorePaths: []string{dep}})
				var out executortest.Output
				res, err := ws.Run(context.Background(), executors.Command{
					Argv:        []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", `nixflow-dep-tool; command -v ls; touch "$1/x" 2>/dev/null && echo writable || echo read-only`, "step", dep},
					PathPrepend: []string{dep + "/bin"},
					Stdout:      &out, Stderr: &out,
				})
				want := "from the dep\n" + dep + "/bin/ls\nread-only\n"
				if err != nil || res.ExitCode != 0 || out.String() != want {
					t.Errorf("image %q: %+v, %v, output %q; want %q", image, res, err, out.String(), want)
				}
			}
		})
	}
}

// TestDaemonDown checks the hint for a docker daemon that does not answer.
func TestDaemonDown(t *testing.T) {
	needRuntime(t, "docker")
	env := append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(t.TempDir(), "docker.sock"))
	_, err := findRuntime(context.Background(), "docker", env)
	if err == nil || !strings.Contains(err.Error(), "hint: start the docker daemon") {
		t.Errorf("daemon down: %v, want a hint to start it", err)
	}
	// auto falls back to podman when docker does not answer.
	if _, perr := exec.LookPath("podman"); perr == nil {
		c, err := findRuntime(context.Background(), "auto", env)
		if err != nil || c.name != "podman" {
			t.Errorf("auto with docker down: %v, %v; want podman", c, err)
		}
	}
}

// TestRunSharesSnapshot starts, at once and in one run directory, jobs
// from the repository on the local executor and on isolated and shared
// containers: each sees the repository (one snapshot serves them all,
// taken once), and once every executor is closed no snapshot is left.
func TestRunSharesSnapshot(t *testing.T) {
	repo := executortest.MakeRepo(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			runDir := t.TempDir()
			runID := "test-snapshot-" + rt + strconv.Itoa(os.Getpid())
			lx, err := local.New(executors.Params{Environ: os.Environ()})
			if err != nil {
				t.Fatal(err)
			}
			xs := []executors.Executor{lx, newExecutor(t, rt, compiler.OCIExecutor{}), newExecutor(t, rt, compiler.OCIExecutor{Mode: "shared"})}
			jobs := []string{"local", "isolated", "shared-a", "shared-b"}
			wss := make([]executors.Workspace, len(jobs))
			errs := make([]error, len(jobs))
			var wg sync.WaitGroup
			for i, job := range jobs {
				wg.Go(func() {
					wss[i], errs[i] = xs[min(i, 2)].Prepare(context.Background(), executors.JobSpec{
						RunID: runID, RunDir: runDir, Job: job, RepoDir: repo, CopyRepo: true,
					})
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			for i, ws := range wss {
				if code, out := run(t, ws, `cat changed.txt; src/main.sh; echo mine > "$J"`, "J="+jobs[i]); code != 0 || out != "new\ncommitted\n" {
					t.Errorf("%s: exit %d, %q", jobs[i], code, out)
				}
			}
			// What one job wrote, no other sees.
			for i, ws := range wss {
				if _, out := run(t, ws, `ls local isolated shared-a shared-b 2>/dev/null || true`); out != jobs[i]+"\n" {
					t.Errorf("%s sees %q", jobs[i], out)
				}
			}
			for _, ws := range wss {
				if err := ws.Teardown(context.Background(), false); err != nil {
					t.Error(err)
				}
			}
			for _, x := range xs {
				if err := x.(interface{ Close(context.Context) error }).Close(context.Background()); err != nil {
					t.Error(err)
				}
			}
			if left, _ := os.ReadDir(filepath.Join(runDir, "snapshots")); len(left) > 0 {
				t.Errorf("snapshots left: %v", left)
			}
		})
	}
}

// TestImageUser runs steps in an image whose USER is not root, with no
// user configured: they run as the image's user and can write in the
// workspace and the temporary directory (the control files).
func TestImageUser(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			c, base := needRuntime(t, rt)
			ctx := context.Background()
			ref := base + "-user"
			if rt == "docker" {
				ref = strings.Replace(base, ":", "-user:", 1)
			}
			id, err := c.output(ctx, nil, "create", base, "true")
			if err != nil {
				t.Fatal(err)
			}
			defer c.output(ctx, nil, "rm", strings.TrimSpace(id))
			if _, err := c.output(ctx, nil, "commit", "--change", "USER ci", strings.TrimSpace(id), ref); err != nil {
				t.Fatal(err)
			}
			// After the workspace's container, which prepare's cleanup
			// removes: an image still in use is only untagged, and
			// would keep the test image.
			t.Cleanup(func() { c.output(ctx, nil, "image", "rm", "--force", ref) })
			x := newExecutor(t, rt, compiler.OCIExecutor{Image: ref})
			ws := prepare(t, x, executors.JobSpec{RunID: "test-image-user-" + rt + strconv.Itoa(os.Getpid()), Job: "u"})
			code, out := run(t, ws, `id -u; echo made > file; echo A=1 >> "$T/env"; cat file`, "T="+ws.TempDir())
			if code != 0 || out != "1000\nmade\n" {
				t.Errorf("exit %d, %q", code, out)
			}
			// As for a nixflow that is not root: copying the control
			// files out gives them to nixflow's user, and back to the
			// steps' for the next step.
			w := ws.(*workspace)
			w.uid, w.gid = 4242, 4242
			if err := ws.CopyOut(ctx, ws.TempDir(), filepath.Join(t.TempDir(), "ctl")); err != nil {
				t.Fatal(err)
			}
			if code, out := run(t, ws, `echo B=2 >> "$T/env"; echo more >> file; stat -c %u "$T/env" file`, "T="+ws.TempDir()); code != 0 || out != "1000\n1000\n" {
				t.Errorf("the next step: exit %d, %q", code, out)
			}
			w.uid, w.gid = 0, 0
		})
	}
}

// TestProbeNotADaemon points docker at an HTTP server that is not a
// docker daemon: docker info exits 0 with no server version, and auto
// must not take it for a docker that answers.
func TestProbeNotADaemon(t *testing.T) {
	testenv.NeedCommand(t, "docker", "docker")
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	env := append(os.Environ(), "DOCKER_HOST=tcp://"+strings.TrimPrefix(srv.URL, "http://"))
	if _, err := probe(context.Background(), "docker", env); err == nil || !strings.Contains(err.Error(), "no docker daemon answers") {
		t.Errorf("probe of a server that is not docker: %v", err)
	}
}

// TestContainerKilled kills a job's container during a step: the
// workspace is lost (an executor failure, which the engine may retry
// elsewhere), not a step that exited 137.
func TestContainerKilled(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			c, _ := needRuntime(t, rt)
			x := newExecutor(t, rt, compiler.OCIExecutor{})
			ws := prepare(t, x, executors.JobSpec{RunID: "test-killed-" + rt + strconv.Itoa(os.Getpid()), Job: "k"})
			done := make(chan error, 1)
			go func() {
				_, err := ws.Run(context.Background(), executors.Command{
					Argv: []string{"bash", "-c", "echo started > started; sleep 100"}, Stdout: io.Discard, Stderr: io.Discard,
				})
				done <- err
			}()
			testenv.WaitForFile(t, filepath.Join(ws.(*workspace).hostDir, "started"))
			if _, err := c.output(context.Background(), nil, "kill", ws.(*workspace).ctr.id); err != nil {
				t.Fatal(err)
			}
			executortest.WantLost(t, done, "Run in a killed container")
		})
	}
}
