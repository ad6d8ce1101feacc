package ssh_test

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/local"
	"github.com/nixflow/nixflow/executors/ssh"
)

// benchSteps runs the step `true` b.N times in a workspace of ex: the
// per-step overhead of the executor.
func benchSteps(b *testing.B, ex executors.Executor) {
	ctx := context.Background()
	ws, err := ex.Prepare(ctx, executors.JobSpec{RunID: "bench", Job: "bench", RunDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Teardown(ctx, false)
	cmd := executors.Command{
		Argv:   []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "true"},
		Env:    []string{"A=1", "B=2"},
		Stdout: io.Discard, Stderr: io.Discard,
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := ws.Run(ctx, cmd)
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("Run: %+v, %v", res, err)
		}
	}
}

// BenchmarkStepSSH is the cost of one step over an open connection to
// the test sshd on a loopback address.
func BenchmarkStepSSH(b *testing.B) {
	s := sshd(b)
	ex, err := ssh.NewForTarget(ssh.Target{Host: s.Addr, Port: s.Port, User: s.User, IdentityFile: s.Key, Options: s.Options()},
		executors.Params{RunID: "bench", RunDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close(context.Background())
	benchSteps(b, ex)
}

// BenchmarkStepLocal is the same step with the local executor.
func BenchmarkStepLocal(b *testing.B) {
	ex, err := local.New(executors.Params{RunID: "bench", RunDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close(context.Background())
	benchSteps(b, ex)
}

// BenchmarkConnectSSH is the cost of a job's first Prepare on a host: the
// master connection, the run's directory, and the workspace.
func BenchmarkConnectSSH(b *testing.B) {
	s := sshd(b)
	for b.Loop() {
		ex, err := ssh.NewForTarget(ssh.Target{Host: s.Addr, Port: s.Port, User: s.User, IdentityFile: s.Key, Options: s.Options()},
			executors.Params{RunID: "bench", RunDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		ws, err := ex.Prepare(context.Background(), executors.JobSpec{RunID: "bench", Job: "bench", RunDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		ws.Teardown(context.Background(), false)
		ex.Close(context.Background())
	}
}

// BenchmarkMuxTrue is the floor of BenchmarkStepSSH: `ssh HOST true` over
// an open master connection, nothing of nixflow's.
func BenchmarkMuxTrue(b *testing.B) {
	s := sshd(b)
	sock := filepath.Join(b.TempDir(), "m")
	args := append(s.SSHArgs(), "-o", "ControlPath="+sock)
	master := exec.Command("ssh", append(args, "-M", "-N", "-o", "ControlPersist=no", s.Addr)...)
	if err := master.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		master.Process.Kill()
		master.Wait()
	}()
	for i := 0; ; i++ {
		if exec.Command("ssh", append(args, "-O", "check", s.Addr)...).Run() == nil {
			break
		}
		if i > 500 {
			b.Fatal("master not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	for b.Loop() {
		if out, err := exec.Command("ssh", append(args, "-o", "ControlMaster=no", s.Addr, "true")...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}
