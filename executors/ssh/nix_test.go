package ssh_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/executortest"
	"github.com/nixflow/nixflow/executors/ssh"
	"github.com/nixflow/nixflow/internal/sshdtest"
	"github.com/nixflow/nixflow/internal/testenv"
)

// storeHost starts a server whose sessions see a Nix store of their own,
// empty (sshdtest.NixHost), stopped at the end of the test.
func storeHost(t *testing.T, untrusting bool) *sshdtest.Server {
	t.Helper()
	ok, why := sshdtest.Available()
	testenv.Need(t, "sshd", ok, why)
	ok, why = sshdtest.NamespacesAvailable()
	testenv.Need(t, "sshd", ok, why)
	dir := t.TempDir()
	o, err := sshdtest.NixHost(dir, untrusting)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sshd"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := sshdtest.StartWith(filepath.Join(dir, "sshd"), o)
	if err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
		// Nix makes its store read-only.
		_ = exec.Command("chmod", "-R", "u+w", filepath.Join(dir, "nix")).Run()
	})
	return s
}

// buildDep builds a store path, new to every test run, with a tool
// bin/nixflow-remote-dep that prints its own path.
func buildDep(t *testing.T) string {
	t.Helper()
	testenv.NeedCommand(t, "nix", "nix-build")
	expr := `derivation {
  name = "nixflow-ssh-dep-` + strings.ToLower(rand.Text()[:10]) + `"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "/bin/mkdir -p $out/bin; printf '#!/bin/sh\necho dep from %s\n' $out > $out/bin/nixflow-remote-dep; /bin/chmod 755 $out/bin/nixflow-remote-dep" ];
}`
	return testenv.NixBuild(t, expr)
}

// remoteHas reports whether p exists on the host, as its sessions see it.
func remoteHas(t *testing.T, s *sshdtest.Server, p string) bool {
	t.Helper()
	out, err := s.Run("if test -e " + shellQuote(p) + "; then echo yes; else echo no; fi")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out) == "yes"
}

// TestNixCopyToOwnStore runs a step with a Nix dep on a host whose store
// is its own and empty: the dep is absent there until Prepare copies its
// closure (nixCopy auto and always); with nixCopy = "never" it stays
// absent and the step cannot find it.
func TestNixCopyToOwnStore(t *testing.T) {
	t.Parallel()
	dep := buildDep(t)
	for _, mode := range []string{"auto", "always", "never"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := storeHost(t, false)
			if remoteHas(t, s, dep) {
				t.Fatalf("%s is on the host before the copy: the host does not have a store of its own", dep)
			}
			tg := target(t, s)
			tg.NixCopy = mode
			ex, err := ssh.NewForTarget(tg, params(t))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := ex.Close(context.Background()); err != nil {
					t.Error(err)
				}
			}()
			ctx := context.Background()
			var log []string
			ws, err := ex.Prepare(ctx, executors.JobSpec{RunID: "test", Job: "deps", RunDir: t.TempDir(),
				StorePaths: []string{dep}, Log: func(m string) { log = append(log, m) }})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Teardown(ctx, false)
			var out executortest.Output
			res, err := ws.Run(ctx, executors.Command{
				Argv:        []string{"bash", "--noprofile", "--norc", "-c", "nixflow-remote-dep"},
				PathPrepend: []string{dep + "/bin"},
				Stdout:      &out, Stderr: &out,
			})
			if err != nil {
				t.Fatal(err)
			}
			copied := strings.Contains(strings.Join(log, "\n"), "copying the closure of 1 store path to "+tg.Where())
			if mode == "never" {
				if copied || res.ExitCode != 127 || remoteHas(t, s, dep) {
					t.Errorf("nixCopy = never: copied %v, step exit status %d (%q), want no copy and 127", copied, res.ExitCode, out.String())
				}
				return
			}
			if !copied {
				t.Errorf("no copy in the job's log: %q", log)
			}
			if want := "dep from " + dep + "\n"; res.ExitCode != 0 || out.String() != want {
				t.Errorf("step with the dep: exit status %d, output %q, want %q", res.ExitCode, out.String(), want)
			}
			if !remoteHas(t, s, dep) {
				t.Errorf("%s is not on the host after the copy", dep)
			}
		})
	}
}

// TestNixCopyUnsigned copies to a host whose Nix does not trust the user
// (a nix-daemon with trusted-users that leave it out): the refusal of the
// unsigned path is an error of Prepare that names the host and says how
// to fix it.
func TestNixCopyUnsigned(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("nix-daemon"); err != nil {
		testenv.Need(t, "nix", false, "nix-daemon not on PATH")
	}
	dep := buildDep(t)
	s := storeHost(t, true)
	tg := target(t, s)
	ex, err := ssh.NewForTarget(tg, params(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close(context.Background())
	_, err = ex.Prepare(context.Background(), executors.JobSpec{RunID: "test", Job: "unsigned", RunDir: t.TempDir(), StorePaths: []string{dep}})
	errorSays(t, err, "Prepare succeeded: the host took an unsigned path from an untrusted user", "copy Nix store paths on "+tg.Where(), "signature", "hint: ", "trusted-users", "require-sigs")
	t.Logf("refusal: %v", err)
	if remoteHas(t, s, dep) {
		t.Errorf("%s is on the host after the refusal", dep)
	}
}

// TestDiskFull runs a job on a host whose remote directory is a tiny
// tmpfs: the copy into the workspace fails with the disk-full hint.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	ok, why := sshdtest.Available()
	testenv.Need(t, "sshd", ok, why)
	ok, why = sshdtest.NamespacesAvailable()
	testenv.Need(t, "sshd", ok, why)
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := sshdtest.StartWith(filepath.Join(dir, "sshd"), sshdtest.Options{
		Mounts: []sshdtest.Mount{{Target: full, Size: "64k"}},
	})
	if err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	defer s.Stop()
	tg := target(t, s)
	tg.Workdir = full
	ex, err := ssh.NewForTarget(tg, params(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ws, err := ex.Prepare(ctx, executors.JobSpec{RunID: "test", Job: "full", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	err = ws.CopyIn(ctx, big, "big")
	errorSays(t, err, "a 1 MiB copy into a 64 KiB disk succeeded", "copy ", ws.Where(), "hint: the host's disk is full")
	if err := ws.Teardown(ctx, false); err != nil {
		t.Error(err)
	}
	if err := ex.Close(ctx); err != nil {
		t.Error(err)
	}
	// The tmpfs is in the server's namespace: look through a session.
	if left, err := s.Run("ls -A " + shellQuote(full)); err != nil || left != "" {
		t.Errorf("left on the full disk: %q, %v", left, err)
	}
}

// TestNixMissing runs a job with Nix deps on a host without Nix (no
// nix-store on the PATH of its sessions): Prepare fails, naming the host
// and the missing tool, with a hint.
func TestNixMissing(t *testing.T) {
	t.Parallel()
	ex, tg := withTools(t, startServer(t), "bash", "tar", "setsid", "mktemp", "mkdir", "rm", "rmdir", "cat", "kill", "chmod", "grep")
	// A path that exists here: the host's lack of Nix is what fails.
	_, err := ex.Prepare(context.Background(), executors.JobSpec{RunID: "test", Job: "deps", RunDir: t.TempDir(),
		StorePaths: []string{"/nix/store/00000000000000000000000000000000-nixflow-test"}})
	errorSays(t, err, "Prepare succeeded on a host without Nix", "on "+tg.Where(), "nix-store not found on the host", "hint: install Nix on the host")
}

// TestNixStoreFull copies deps to a host whose /nix is a small tmpfs
// that the closure does not fit in: the error has the disk-full hint.
func TestNixStoreFull(t *testing.T) {
	t.Parallel()
	testenv.NeedCommand(t, "nix", "nix-build")
	expr := `derivation {
  name = "nixflow-ssh-big-` + strings.ToLower(rand.Text()[:10]) + `"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "/usr/bin/head -c 3000000 /dev/urandom > $out" ];
}`
	dep := testenv.NixBuild(t, expr)
	ok, why := sshdtest.NamespacesAvailable()
	testenv.Need(t, "sshd", ok, why)
	ok, why = sshdtest.Available()
	testenv.Need(t, "sshd", ok, why)
	s, err := sshdtest.StartWith(t.TempDir(), sshdtest.Options{Mounts: []sshdtest.Mount{{Target: "/nix", Size: "2m"}}})
	if err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	defer s.Stop()
	tg := target(t, s)
	ex, err := ssh.NewForTarget(tg, params(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close(context.Background())
	_, err = ex.Prepare(context.Background(), executors.JobSpec{RunID: "test", Job: "big", RunDir: t.TempDir(), StorePaths: []string{dep}})
	errorSays(t, err, "Prepare succeeded: a 3 MB path fit in a 2 MiB store", "copy Nix store paths on "+tg.Where(), "hint: the host's disk is full")
	t.Logf("store full: %v", err)
}
