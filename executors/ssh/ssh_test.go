package ssh_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/executortest"
	"github.com/nixflow/nixflow/executors/ssh"
	"github.com/nixflow/nixflow/internal/sshdtest"
	"github.com/nixflow/nixflow/internal/testenv"
)

var (
	serverOnce sync.Once
	server     *sshdtest.Server
	serverErr  error
	serverDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if server != nil {
		if err := server.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop sshd:", err)
			code = 1
		}
	}
	if serverDir != "" {
		os.RemoveAll(serverDir)
	}
	os.Exit(code)
}

// sshd returns the package's server, started on first use.
func sshd(t testing.TB) *sshdtest.Server {
	t.Helper()
	ok, why := sshdtest.Available()
	testenv.Need(t, "sshd", ok, why)
	serverOnce.Do(func() {
		serverDir, serverErr = os.MkdirTemp("", "nixflow-sshd-")
		if serverErr != nil {
			return
		}
		server, serverErr = sshdtest.Start(serverDir, "")
	})
	if serverErr != nil {
		t.Fatalf("start sshd: %v", serverErr)
	}
	return server
}

// target is a Target for s, with the runs made under a fresh directory
// that the test checks is empty at its end.
func target(t *testing.T, s *sshdtest.Server) ssh.Target {
	t.Helper()
	work := filepath.Join(s.Home, "work", strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		left, _ := os.ReadDir(work)
		if len(left) > 0 {
			t.Errorf("left on the host in %s: %v", work, left)
		}
	})
	return ssh.Target{Host: s.Addr, Port: s.Port, User: s.User, IdentityFile: s.Key, Options: s.Options(), Workdir: work}
}

func params(t *testing.T) executors.Params {
	return executors.Params{RunID: "test", RunDir: t.TempDir()}
}

func TestConformance(t *testing.T) {
	s := sshd(t)
	executortest.Run(t, executortest.Backend{
		New: func(t *testing.T) executors.Executor {
			tg := target(t, s)
			ex, err := ssh.NewForTarget(tg, params(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				// Workspaces kept with Teardown(keep=true) are the test's to
				// remove; anything else left (the control files above all)
				// is an error (target's check, which runs next).
				kept, _ := filepath.Glob(filepath.Join(tg.Workdir, "nixflow.*", "jobs", "*"))
				for _, k := range kept {
					os.RemoveAll(k)
				}
				for _, k := range kept {
					os.Remove(filepath.Dir(k))
					os.Remove(filepath.Dir(filepath.Dir(k)))
				}
			})
			return ex
		},
		InheritsHostEnv: false,
		ReadKept: func(t *testing.T, ws executors.Workspace, rel string) ([]byte, error) {
			// The "remote" host is this machine: read it through ssh all
			// the same.
			out, err := s.Run("cat " + shellQuote(path.Join(ws.Dir(), rel)) + " 2>/dev/null || echo gone:$?")
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(out, "gone:") {
				return nil, fs.ErrNotExist
			}
			return []byte(out), nil
		},
	})
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// TestUnreachable checks the error and hint of a host that does not
// answer.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	s := sshd(t)
	tg := target(t, s)
	tg.Port = s.Port + 1
	if tg.Port > 65535 {
		tg.Port = s.Port - 1
	}
	ex, err := ssh.NewForTarget(tg, params(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close(context.Background())
	_, err = ex.Prepare(context.Background(), executors.JobSpec{RunID: "test", Job: "j", RunDir: t.TempDir()})
	errorSays(t, err, "Prepare succeeded", "host "+tg.Where(), "Connection refused", "hint: check the host name, port")
}

// errorSays fails t, with failed, when err is nil, and reports each of
// wants that err does not say.
func errorSays(t *testing.T, err error, failed string, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatal(failed)
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestAuthFailure checks the error and hint of a key the host refuses.
func TestAuthFailure(t *testing.T) {
	t.Parallel()
	s := sshd(t)
	tg := target(t, s)
	tg.IdentityFile = filepath.Join(s.Dir, "host_key") // not authorised
	ex, err := ssh.NewForTarget(tg, params(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close(context.Background())
	_, err = ex.Prepare(context.Background(), executors.JobSpec{RunID: "test", Job: "j", RunDir: t.TempDir()})
	errorSays(t, err, "Prepare with a refused key succeeded", "Permission denied", "hint: the host refused every key")
}

// TestNoSecretsOnTheHost checks that after a workspace is torn down, no
// declared value is left anywhere under the host's directories, and that
// no value ever showed on a command line there.
func TestNoSecretsOnTheHost(t *testing.T) {
	t.Parallel()
	s := sshd(t)
	tg := target(t, s)
	ex, err := ssh.NewForTarget(tg, params(t))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-VALUE-4242"
	ws, err := ex.Prepare(context.Background(), executors.JobSpec{RunID: "test", Job: "secret", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var out executortest.Output
	res, err := ws.Run(context.Background(), executors.Command{
		Argv: []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
			`printf 'value=%s\n' "$TOKEN"
for f in /proc/[0-9]*/cmdline; do
	mapfile -d '' a < "$f" 2>/dev/null || continue
	case "${a[*]}" in *"$TOKEN"*) echo "on a command line: $f: ${a[*]}";; esac
done
echo "TOKEN=$TOKEN" >> "$JOB_ENV"`},
		Env:    []string{"TOKEN=" + secret, "JOB_ENV=" + path.Join(ws.TempDir(), "env")},
		Stdout: &out, Stderr: &out,
	})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run: %+v, %v\n%s", res, err, out.String())
	}
	if !strings.Contains(out.String(), "value="+secret+"\n") {
		t.Errorf("the step did not see the value:\n%s", out.String())
	}
	if strings.Contains(out.String(), "on a command line") {
		t.Errorf("the value is on a command line on the host:\n%s", out.String())
	}
	if err := ws.Teardown(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if err := ex.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The whole home of the host's user: other tests come and go there
	// meanwhile, so that what vanishes is no error.
	err = filepath.WalkDir(s.Home, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), secret) {
			t.Errorf("%s holds the secret", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHostKeyMismatch checks the error and hint when the host's key is
// not the one known_hosts has.
func TestHostKeyMismatch(t *testing.T) {
	t.Parallel()
	s := sshd(t)
	tg := target(t, s)
	other, err := os.ReadFile(s.Key + ".pub") // not the host key
	if err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(t.TempDir(), "known_hosts")
	fields := strings.Fields(string(other))
	line := fmt.Sprintf("[%s]:%d %s %s\n", s.Addr, s.Port, fields[0], fields[1])
	if err := os.WriteFile(known, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	tg.Options = []string{"StrictHostKeyChecking=yes", "UserKnownHostsFile=" + known}
	ex, err := ssh.NewForTarget(tg, params(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close(context.Background())
	_, err = ex.Prepare(context.Background(), executors.JobSpec{RunID: "test", Job: "j", RunDir: t.TempDir()})
	// The hint's commands name the host as known_hosts and ssh need it,
	// with its port and key: they work as given.
	name := fmt.Sprintf("[%s]:%d", s.Addr, s.Port)
	for _, want := range []string{
		"host key verification failed: the host's key changed",
		"hint: the key differs from the one known_hosts holds for " + name + ": someone may be in the middle",
		"ssh-keygen -R '" + name + "'; ssh -p " + strconv.Itoa(s.Port) + " -i " + s.Key + " " + tg.User + "@" + s.Addr + ")",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Prepare with a wrong host key: %v\nwant it to say %q", err, want)
		}
	}
	if out, kerr := exec.Command("ssh-keygen", "-R", name, "-f", known).CombinedOutput(); kerr != nil || !strings.Contains(string(out), "updated") {
		t.Errorf("ssh-keygen -R %s as the hint says: %v, %s", name, kerr, out)
	}
}

// withTools restarts s with only tools on its sessions' PATH (sh is the
// login shell's business: the session runs the user's shell by its
// absolute path) and returns an executor for it, closed at the end of the
// test, and its target. It skips the test when a tool is missing here.
func withTools(t *testing.T, s *sshdtest.Server, tools ...string) (executors.Executor, ssh.Target) {
	t.Helper()
	bin := filepath.Join(s.Dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	s.Env = []string{"PATH=" + bin}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	tg := target(t, s)
	ex, err := ssh.NewForTarget(tg, params(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ex.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ex, tg
}

// TestMissingTools checks the errors of a host whose login PATH lacks
// bash, or tar and setsid.
func TestMissingTools(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		tools []string
		want  string
	}{
		{"bash", nil, "bash is not installed"},
		{"tar", []string{"bash", "mktemp", "mkdir", "rm", "rmdir", "cat", "kill", "chmod", "grep"}, "tar and setsid (util-linux) not installed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ex, _ := withTools(t, startServer(t), c.tools...)
			_, err := ex.Prepare(context.Background(), executors.JobSpec{RunID: "test", Job: "j", RunDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "hint: ") {
				t.Errorf("Prepare on a host without %s: %v, want %q and a hint", c.name, err, c.want)
			}
		})
	}
}

// TestManyStepsOneHost runs more steps at once on one host than sshd
// allows sessions on a connection by default (10): the extra ones wait for
// a channel instead of failing.
func TestManyStepsOneHost(t *testing.T) {
	t.Parallel()
	s := startServer(t) // sshd's default MaxSessions
	ex, err := ssh.NewForTarget(target(t, s), params(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close(context.Background())
	ctx := context.Background()
	const n = 14
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ws, err := ex.Prepare(ctx, executors.JobSpec{RunID: "test", Job: fmt.Sprintf("j%d", i), RunDir: t.TempDir()})
			if err != nil {
				errs[i] = err
				return
			}
			defer ws.Teardown(ctx, false)
			res, out, err := runStep(ws, ctx, "sleep 0.5; echo done")
			if err == nil && (res.ExitCode != 0 || out != "done\n") {
				err = fmt.Errorf("exit status %d, output %q", res.ExitCode, out)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("job %d: %v", i, err)
		}
	}
}

// TestNoisyLogin checks that a login script that prints (a ~/.bashrc that
// echoes, which breaks scp) does not break the connection nor the copies.
func TestNoisyLogin(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	if err := os.WriteFile(filepath.Join(s.Home, ".bashrc"), []byte("echo welcome to the noisy host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ws := prepareOn(t, target(t, s), executors.JobSpec{Job: "noisy"})
	_, out, err := runStep(ws, ctx, "printf data > f")
	if err != nil {
		t.Fatalf("Run: %v %s", err, out)
	}
	if !strings.Contains(out, "welcome") {
		t.Log("the login shell did not read ~/.bashrc: the copies were not put to the test")
	}
	dst := filepath.Join(t.TempDir(), "f")
	if err := ws.CopyOut(ctx, "f", dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dst); err != nil || string(b) != "data" {
		t.Errorf("copied out %q, %v", b, err)
	}
}

// TestRelativeWorkdir: a relative workdir is taken from the remote home,
// as ~/ is, and every path the steps get is absolute: a step that changes
// directories still finds its control files.
func TestRelativeWorkdir(t *testing.T) {
	t.Parallel()
	s := sshd(t)
	tg := target(t, s)
	rel, err := filepath.Rel(s.Home, tg.Workdir)
	if err != nil {
		t.Fatal(err)
	}
	tg.Workdir = rel + "/with space"
	// (Once the run is torn down, before target's check.)
	t.Cleanup(func() { os.Remove(filepath.Join(s.Home, tg.Workdir)) })
	ws := prepareOn(t, tg, executors.JobSpec{Job: "rel"})
	for _, p := range []string{ws.Dir(), ws.TempDir()} {
		if !path.IsAbs(p) || !strings.HasPrefix(p, s.Home+"/") {
			t.Errorf("%q is not an absolute path in the remote home %s", p, s.Home)
		}
	}
	res, out, err := runStep(ws, context.Background(), "mkdir sub; cd sub; echo x > "+shellQuote(path.Join(ws.TempDir(), "f"))+"; cat "+shellQuote(path.Join(ws.TempDir(), "f")))
	if err != nil || res.ExitCode != 0 || out != "x\n" {
		t.Errorf("step: exit status %d, err %v, output %q", res.ExitCode, err, out)
	}
}

// TestOwnExit255NoMark: a step's own exit status 255 stays the step's
// where the runner cannot leave its mark (a full disk: here, a directory
// in its place), not an executor failure whose reason is the step's
// stderr.
func TestOwnExit255NoMark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ws := prepareOn(t, target(t, sshd(t)), executors.JobSpec{Job: "j"})
	ctl := path.Join(path.Dir(path.Dir(ws.TempDir())), "ctl")
	res, out, err := runStep(ws, ctx, `mkdir "`+ctl+`/job.j@$NIXFLOW_STEP_COOKIE.255"; echo my own failure >&2; exit 255`)
	if err != nil || res.ExitCode != 255 || out != "my own failure\n" {
		t.Errorf("Run: exit status %d, err %v, output %q; want the step's exit status 255", res.ExitCode, err, out)
	}
}

// TestClientKilled: the step's ssh client killed by a signal (not by Run)
// is an executor failure, not a step that exited with status -1 (which
// would be retried as the step's failure).
func TestClientKilled(t *testing.T) {
	t.Parallel()
	s := sshd(t)
	ctx := context.Background()
	ws := prepareOn(t, target(t, s), executors.JobSpec{Job: "killed"})
	mark := "nixflow-test-" + strconv.Itoa(os.Getpid()) + "-" + s.Addr
	type ran struct {
		res executors.Result
		err error
	}
	done := make(chan ran, 1)
	go func() {
		res, _, err := runStep(ws, ctx, ": "+mark+"; sleep 30; true")
		done <- ran{res, err}
	}()
	// The client: a child of this process whose arguments hold the step
	// (the runner reads them from its standard input: the mark is in no
	// command line but the remote bash's), so found by its session.
	var client int
	deadline := time.Now().Add(15 * time.Second)
	for client == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		out, _ := exec.Command("pgrep", "-f", mark).Output()
		if len(strings.Fields(string(out))) == 0 {
			continue // not started yet
		}
		// (The workdir holds the test's name: not another test's client.)
		out, _ = exec.Command("pgrep", "-P", strconv.Itoa(os.Getpid()), "-f", "/TestClientKilled/.*ctl/step.sh").Output()
		for _, f := range strings.Fields(string(out)) {
			client, _ = strconv.Atoi(f)
		}
	}
	if client == 0 {
		out, _ := exec.Command("ps", "-eo", "pid,ppid,args").Output()
		t.Fatalf("the step's ssh client was not found (test %d):\n%s", os.Getpid(), out)
	}
	syscall.Kill(client, syscall.SIGKILL)
	select {
	case r := <-done:
		if r.err == nil {
			t.Errorf("Run: %+v, no error; want an executor failure", r.res)
		} else {
			t.Logf("Run: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestPingHungHost: on a host that stopped answering (its sessions
// stopped, as in a network partition), a copy hangs; Ping fails within
// its timeout and gives up the connection, so that the copy fails at
// once.
func TestPingHungHost(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tg := target(t, s)
	ex, err := ssh.NewForTarget(tg, params(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ws, err := ex.Prepare(ctx, executors.JobSpec{RunID: "test", Job: "hung", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res, _, err := runStep(ws, ctx, "echo data > out"); err != nil || res.ExitCode != 0 {
		t.Fatalf("step: %+v, %v", res, err)
	}
	// The sessions and the server stopped: no new connection either.
	data, err := os.ReadFile(filepath.Join(s.Dir, "sshd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	server, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if n, err := sshdtest.SignalSessions(s.Addr, s.Port, syscall.SIGSTOP); err != nil || n == 0 || server <= 1 {
		t.Fatalf("stopping the sessions: %d stopped, %v; server %d", n, err, server)
	}
	syscall.Kill(server, syscall.SIGSTOP)
	resume := func() {
		syscall.Kill(server, syscall.SIGCONT)
		sshdtest.SignalSessions(s.Addr, s.Port, syscall.SIGCONT)
	}
	defer resume()
	copied := make(chan error, 1)
	outDir := t.TempDir()
	go func() { copied <- ws.CopyOut(ctx, "out", filepath.Join(outDir, "out")) }()
	start := time.Now()
	if err := ws.(executors.Pinger).Ping(); err == nil {
		t.Fatal("Ping of a host that does not answer succeeded")
	} else {
		t.Logf("Ping: %v after %v", err, time.Since(start).Round(time.Millisecond))
	}
	select {
	case err := <-copied:
		if err == nil {
			data, rerr := os.ReadFile(filepath.Join(outDir, "out"))
			t.Errorf("CopyOut from a host that does not answer succeeded: %q %v", data, rerr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("CopyOut still hangs 15 s after Ping gave the connection up")
	}
	// Resumed, the host's anchor sees its connection gone and removes the
	// run's directory.
	resume()
	ws.Teardown(ctx, false)
	ex.Close(ctx)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if left, _ := os.ReadDir(tg.Workdir); len(left) == 0 {
			break
		}
	}
}

// TestRepoDirectoryTimes: the directories of the copied repository keep
// their times (tar sets a directory's time from its header: none was
// 1970).
func TestRepoDirectoryTimes(t *testing.T) {
	t.Parallel()
	repo := executortest.MakeRepo(t)
	ws := prepareOn(t, target(t, sshd(t)), executors.JobSpec{Job: "times", CopyRepo: true, RepoDir: repo})
	src, err := os.Stat(filepath.Join(repo, "src"))
	if err != nil {
		t.Fatal(err)
	}
	// The "remote" host is this machine.
	got, err := os.Stat(filepath.Join(ws.Dir(), "src"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.ModTime().Equal(src.ModTime().Truncate(time.Second)) && !got.ModTime().Equal(src.ModTime()) {
		t.Errorf("src/ in the workspace dates from %v, in the repository from %v", got.ModTime(), src.ModTime())
	}
}

// prepareOn prepares a workspace for spec (its RunID and RunDir filled
// in) with a new executor for tg; the test's end tears both down, and
// fails on an error of either.
func prepareOn(t *testing.T, tg ssh.Target, spec executors.JobSpec) executors.Workspace {
	t.Helper()
	ex, err := ssh.NewForTarget(tg, params(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ex.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	spec.RunID, spec.RunDir = "test", t.TempDir()
	ws, err := ex.Prepare(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ws.Teardown(context.Background(), false); err != nil {
			t.Errorf("Teardown: %v", err)
		}
	})
	return ws
}
