package ssh_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/executortest"
	"github.com/nixflow/nixflow/executors/ssh"
	"github.com/nixflow/nixflow/internal/sshdtest"
	"github.com/nixflow/nixflow/internal/testenv"
)

// startServer starts a server of the test's own, on an address other
// than taken's, stopped at the end of the test.
func startServer(t *testing.T, taken ...string) *sshdtest.Server {
	t.Helper()
	ok, why := sshdtest.Available()
	testenv.Need(t, "sshd", ok, why)
	for range 10 {
		s, err := sshdtest.Start(t.TempDir(), "")
		if err != nil {
			t.Fatalf("start sshd: %v", err)
		}
		if !contains(taken, s.Addr) {
			t.Cleanup(func() {
				if err := s.Stop(); err != nil {
					t.Error(err)
				}
			})
			return s
		}
		s.Stop()
	}
	t.Fatal("no free loopback address")
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func poolTarget(t *testing.T, s *sshdtest.Server, maxJobs int) ssh.Target {
	tg := target(t, s)
	tg.MaxJobs = maxJobs
	return tg
}

func runStep(ws executors.Workspace, ctx context.Context, script string) (executors.Result, string, error) {
	var out executortest.Output
	res, err := ws.Run(ctx, executors.Command{
		Argv:   []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script},
		Stdout: &out, Stderr: &out,
	})
	return res, out.String(), err
}

// TestPoolSpreadsJobs checks that jobs go to the least busy host, at most
// maxJobs at a time on each, and wait for a slot when every host is full.
func TestPoolSpreadsJobs(t *testing.T) {
	t.Parallel()
	a := startServer(t)
	b := startServer(t, a.Addr)
	ex, err := ssh.NewPool([]ssh.Target{poolTarget(t, a, 1), poolTarget(t, b, 2)}, params(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ex.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	ctx := context.Background()
	spec := func(job string) executors.JobSpec {
		return executors.JobSpec{RunID: "test", Job: job, RunDir: t.TempDir()}
	}
	count := map[string]int{}
	var wss []executors.Workspace
	for _, job := range []string{"j1", "j2", "j3"} {
		ws, err := ex.Prepare(ctx, spec(job))
		if err != nil {
			t.Fatalf("Prepare(%s): %v", job, err)
		}
		wss = append(wss, ws)
		count[ws.Where()]++
	}
	wa, wb := a.User+"@"+a.Addr, b.User+"@"+b.Addr
	if count[wa] != 1 || count[wb] != 2 {
		t.Errorf("jobs per host: %v, want 1 on %s and 2 on %s", count, wa, wb)
	}
	for _, ws := range wss {
		res, out, err := runStep(ws, ctx, `echo "$SSH_CONNECTION"`)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("Run: %v %+v %s", err, res, out)
		}
		if addr := strings.Fields(out)[2]; !strings.HasSuffix(ws.Where(), "@"+addr) {
			t.Errorf("step of a workspace on %s ran on %s", ws.Where(), addr)
		}
	}
	// Every slot is taken: the next job waits for one.
	waitCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if ws, err := ex.Prepare(waitCtx, spec("j4")); err == nil {
		ws.Teardown(ctx, false)
		t.Fatal("Prepare found a slot on a full pool")
	}
	got := make(chan executors.Workspace, 1)
	go func() {
		ws, err := ex.Prepare(ctx, spec("j4"))
		if err != nil {
			t.Error(err)
		}
		got <- ws
	}()
	if err := wss[0].Teardown(ctx, false); err != nil {
		t.Fatal(err)
	}
	ws := <-got
	if ws == nil {
		return
	}
	if ws.Where() != wss[0].Where() {
		t.Errorf("the waiting job went to %s, want %s, whose slot freed", ws.Where(), wss[0].Where())
	}
	for _, w := range append(wss[1:], ws) {
		if err := w.Teardown(ctx, false); err != nil {
			t.Error(err)
		}
	}
}

// TestPoolHostDown takes a host down while a job runs there: the job's
// step fails as an infrastructure error, the host is out of the pool, and
// later jobs go to the other host, also one that is down from the start.
func TestPoolHostDown(t *testing.T) {
	t.Parallel()
	a := startServer(t)
	b := startServer(t, a.Addr)
	c := startServer(t, a.Addr, b.Addr)
	tc := poolTarget(t, c, 1)
	if err := c.Stop(); err != nil { // down from the start
		t.Fatal(err)
	}
	ex, err := ssh.NewPool([]ssh.Target{poolTarget(t, a, 1), poolTarget(t, b, 1), tc}, params(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close(context.Background())
	ctx := context.Background()
	spec := func(job string) executors.JobSpec {
		return executors.JobSpec{RunID: "test", Job: job, RunDir: t.TempDir(), Log: func(m string) { t.Log(job + ": " + m) }}
	}
	w1, err := ex.Prepare(ctx, spec("j1"))
	if err != nil {
		t.Fatal(err)
	}
	w2, err := ex.Prepare(ctx, spec("j2"))
	if err != nil {
		t.Fatal(err)
	}
	if w1.Where() == w2.Where() {
		t.Fatalf("both jobs on %s", w1.Where())
	}
	victim, survivor := a, b
	vws, sws := w1, w2
	if !strings.HasSuffix(w1.Where(), "@"+a.Addr) {
		vws, sws = w2, w1
	}
	pidFile := filepath.Join(vws.Dir(), "sleep.pid")
	done := make(chan error, 1)
	go func() {
		res, out, err := runStep(vws, ctx, `sleep 1000 & echo $! > sleep.pid; echo ready; wait`)
		if err == nil {
			t.Errorf("the step on the host that went down: %+v, no error; output %q", res, out)
		}
		done <- err
	}()
	for i := 0; ; i++ {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			break
		}
		if i > 500 {
			t.Fatal("the step did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pid, _ := os.ReadFile(pidFile)
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil && !strings.Contains(err.Error(), "connection") {
			t.Errorf("error %q does not say the connection was lost", err)
		}
		// What lets the engine prepare the job again elsewhere.
		if err != nil && !errors.Is(err, executors.ErrWorkspaceLost) {
			t.Errorf("error %q is not executors.ErrWorkspaceLost", err)
		}
		t.Logf("step on the downed host: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its host went down")
	}
	// Later operations fail at once, as lost too: no new connection to a
	// host that is down.
	if _, _, err := runStep(vws, ctx, "true"); !errors.Is(err, executors.ErrWorkspaceLost) {
		t.Errorf("Run after the host went down: %v, want executors.ErrWorkspaceLost", err)
	}
	if err := vws.Teardown(ctx, false); !errors.Is(err, executors.ErrWorkspaceLost) {
		t.Errorf("Teardown after the host went down: %v, want executors.ErrWorkspaceLost", err)
	}

	// Nothing of the step survives its lost session (the "host" is
	// this machine).
	for i := 0; ; i++ {
		if _, err := os.Stat("/proc/" + strings.TrimSpace(string(pid))); err != nil {
			break
		}
		if i > 300 {
			t.Fatalf("the step's sleep %s survived its lost connection", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The next job waits for the surviving host, not for the down ones.
	got := make(chan executors.Workspace, 1)
	go func() {
		ws, err := ex.Prepare(ctx, spec("j3"))
		if err != nil {
			t.Error(err)
		}
		got <- ws
	}()
	time.Sleep(100 * time.Millisecond)
	if err := sws.Teardown(ctx, false); err != nil {
		t.Fatal(err)
	}
	w3 := <-got
	if w3 == nil {
		return
	}
	if !strings.HasSuffix(w3.Where(), "@"+survivor.Addr) {
		t.Errorf("job after the host went down ran on %s, want %s", w3.Where(), survivor.Addr)
	}
	if _, out, err := runStep(w3, ctx, "echo ok"); err != nil || out != "ok\n" {
		t.Errorf("Run on the surviving host: %q, %v", out, err)
	}
	if err := w3.Teardown(ctx, false); err != nil {
		t.Error(err)
	}
}

// singleHost starts a server of the test's own and returns it, its
// target and an executor for it, closed at the end of the test.
func singleHost(t *testing.T) (*sshdtest.Server, ssh.Target, executors.Executor) {
	t.Helper()
	s := startServer(t)
	tg := target(t, s)
	ex, err := ssh.NewForTarget(tg, params(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close(context.Background()) })
	return s, tg, ex
}

// waitHostClean waits, up to 15 s, until the host keeps at most n run
// directories in tg's workdir: the side of a connection that went cleans
// up once it sees so (target's cleanup checks).
func waitHostClean(tg ssh.Target, n int) {
	for i := 0; i < 150; i++ {
		if left, _ := os.ReadDir(tg.Workdir); len(left) <= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSingleHostConnectsAgain drops the connection to a single host
// during a step (its sessions die, the host stays up): the step's
// workspace is lost, and the next job connects again and runs. Once the
// host is down for good, jobs fail at once.
func TestSingleHostConnectsAgain(t *testing.T) {
	t.Parallel()
	s, tg, ex := singleHost(t)
	ctx := context.Background()
	spec := func(job string) executors.JobSpec {
		return executors.JobSpec{RunID: "test", Job: job, RunDir: t.TempDir()}
	}
	w1, err := ex.Prepare(ctx, spec("j1"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := runStep(w1, ctx, `echo started > started; sleep 1000`)
		done <- err
	}()
	testenv.WaitForFile(t, filepath.Join(w1.Dir(), "started"))
	if err := sshdtest.KillSessions(s.Addr, s.Port); err != nil {
		t.Fatal(err)
	}
	executortest.WantLost(t, done, "the step whose connection dropped")
	w1.Teardown(ctx, false)
	w2, err := ex.Prepare(ctx, spec("j2"))
	if err != nil {
		t.Fatalf("the next job on the host that is still up: %v", err)
	}
	if _, out, err := runStep(w2, ctx, `echo again`); err != nil || out != "again\n" {
		t.Errorf("step on the new connection: %q, %v", out, err)
	}
	if err := w2.Teardown(ctx, false); err != nil {
		t.Error(err)
	}
	// The dropped connection's run directory goes once its side on the
	// host sees the connection gone (target's cleanup checks).
	waitHostClean(tg, 1)
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, job := range []string{"j3", "j4"} {
		start := time.Now()
		if _, err := ex.Prepare(ctx, spec(job)); err == nil {
			t.Errorf("%s prepared on a host that is down", job)
		} else if job == "j4" && time.Since(start) > time.Second {
			t.Errorf("%s took %v to fail on a host known to be down", job, time.Since(start))
		}
	}
	waitHostClean(tg, 0)
}

// TestHungConnectionEnds makes the connection hang during a step (the
// host's session stopped, as in a network partition) and stops the step:
// Run does not wait for ssh to notice (a minute), it ends the connection
// and reports the workspace lost, and what follows fails at once.
func TestHungConnectionEnds(t *testing.T) {
	t.Parallel()
	s, tg, ex := singleHost(t)
	w, err := ex.Prepare(context.Background(), executors.JobSpec{RunID: "test", Job: "hang", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := runStep(w, ctx, `echo started > started; sleep 1000`)
		done <- err
	}()
	testenv.WaitForFile(t, filepath.Join(w.Dir(), "started"))
	if _, err := sshdtest.SignalSessions(s.Addr, s.Port, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The sessions go on once the test is done, and clean up.
	defer sshdtest.SignalSessions(s.Addr, s.Port, syscall.SIGCONT)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, executors.ErrWorkspaceLost) {
			t.Errorf("Run on a hung connection: %v, want executors.ErrWorkspaceLost", err)
		}
		t.Logf("Run returned after %v: %v", time.Since(start), err)
	case <-time.After(40 * time.Second):
		t.Fatal("Run did not return on a hung connection")
	}
	start = time.Now()
	if err := w.CopyOut(context.Background(), w.TempDir(), filepath.Join(t.TempDir(), "ctl")); !errors.Is(err, executors.ErrWorkspaceLost) {
		t.Errorf("CopyOut after: %v, want executors.ErrWorkspaceLost", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("CopyOut after took %v", d)
	}
	w.Teardown(context.Background(), false)
	// Let the host go on: its side of the run sees the connection gone
	// and removes what it made (target's cleanup checks).
	if _, err := sshdtest.SignalSessions(s.Addr, s.Port, syscall.SIGCONT); err != nil {
		t.Log(err)
	}
	waitHostClean(tg, 0)

	// The host is connected to again, and its commands share that one
	// connection (the killed master's socket does not stand in the way).
	w2, err := ex.Prepare(context.Background(), executors.JobSpec{RunID: "test", Job: "again", RunDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Prepare after the hung connection: %v", err)
	}
	defer w2.Teardown(context.Background(), false)
	done2 := make(chan error, 1)
	go func() {
		_, _, err := runStep(w2, context.Background(), `echo started > started; sleep 2`)
		done2 <- err
	}()
	testenv.WaitForFile(t, filepath.Join(w2.Dir(), "started"))
	out, err := exec.Command("ss", "-Htn", "state", "established", "dst", net.JoinHostPort(s.Addr, strconv.Itoa(s.Port))).Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Split(strings.TrimSpace(string(out)), "\n")); n != 1 {
		t.Errorf("%d connections to the host while a step runs, want the master's alone:\n%s", n, out)
	}
	if err := <-done2; err != nil {
		t.Error(err)
	}
}
