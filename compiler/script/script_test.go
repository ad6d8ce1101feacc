package script_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/compiler/script"
	"github.com/nixflow/nixflow/internal/sshdtest"
	"github.com/nixflow/nixflow/internal/testenv"
)

// A workflow that uses every feature the script carries.
const rich = `{"version": 1, "name": "rich",
 "env": {"A": "it's \"quoted\" $HOME $(x) \\ back"},
 "envFrom": [{"type": "static", "values": {"S": "v"}}, {"type": "file", "path": "x.env"},
             {"type": "command", "command": "echo K=v"}, {"type": "required", "names": ["S"]},
             {"type": "sops", "file": "s.yaml", "required": false}],
 "retry": {"maxAttempts": 2, "backoff": "linear", "minTime": 0.01},
 "timeout": "1h",
 "jobs": {
   "build": {"steps": [{"name": "s'1", "bash": "echo 'a' \"b\" $c\nexit 0", "env": {"X": "y"},
                        "deps": [{"path": "/nix/store/aaaa-dep", "drv": "/nix/store/aaaa-dep.drv"}], "workdir": "sub"}],
             "outputs": {"o": "out/file"}},
   "test": {"needs": ["build"], "inputs": ["o", {"name": "o", "path": "v"}], "condition": "[ \"$A\" != x ] || true",
            "continueOnError": true, "steps": [{"bash": "true", "condition": "failure() && true", "timeout": "500ms"}]},
   "notify": {"needs": ["test"], "condition": "always()", "steps": [{"bash": "echo done"}]}}}`

func plan(t *testing.T, graph string) *compiler.Plan {
	t.Helper()
	p, err := compiler.Compile("test.json", []byte(graph))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func compile(t *testing.T, graph string) []byte {
	t.Helper()
	out, _, err := script.Compile(plan(t, graph), script.Options{Source: "test.json", MaxParallel: -1})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	a, b := compile(t, rich), compile(t, rich)
	if !bytes.Equal(a, b) {
		t.Fatal("two compilations of the same plan differ")
	}
	head := string(a[:min(len(a), 600)])
	for _, want := range []string{"#!/usr/bin/env bash", "nixflow workflow rich", "from test.json", "plan sha256 "} {
		if !strings.Contains(head, want) {
			t.Errorf("header lacks %q:\n%s", want, head)
		}
	}
	last := strings.TrimRight(string(a), "\n")
	last = last[strings.LastIndexByte(last, '\n')+1:]
	if last != `nf_main "$@"; exit "$?"` {
		t.Errorf("the last line is %q, want the one call to nf_main", last)
	}
}

func TestShellcheckAndSyntax(t *testing.T) {
	t.Parallel()
	sc := testenv.NeedCommand(t, "shellcheck", "shellcheck")
	f := filepath.Join(t.TempDir(), "result")
	if err := os.WriteFile(f, compile(t, rich), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	if out, err := exec.Command(sc, "--severity=info", f).CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

func TestOtherExecutors(t *testing.T) {
	const g = `{"version": 1, "name": "x", "jobs": {
	  "a": {"executor": {"type": "oci", "image": "i:1"}, "steps": [{"bash": "true"}]},
	  "b": {"executor": {"type": "ssh", "host": "h"}, "steps": [{"bash": "true"}]},
	  "c": {"steps": [{"bash": "true"}]}}}`
	_, _, err := script.Compile(plan(t, g), script.Options{})
	var xe *script.ExecutorError
	if !errors.As(err, &xe) {
		t.Fatalf("err = %v, want an ExecutorError", err)
	}
	want := "job a (oci executor): a compiled script runs local jobs only\njob b (ssh executor): a compiled script runs local jobs only"
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
	_, warnings, err := script.Compile(plan(t, g), script.Options{LocalOnly: true})
	if err != nil || len(warnings) != 2 || warnings[0] != "job a: oci executor mapped to local (--local-only)" {
		t.Errorf("--local-only: warnings %q, err %v", warnings, err)
	}
}

// A step that reads standard input must not eat the rest of a script that
// bash reads from its standard input (`ssh host < result`).
func TestStdinNotEaten(t *testing.T) {
	const g = `{"version": 1, "name": "stdin", "jobs": {
	  "reader": {"executor": {"type": "local", "copyRepo": false},
	             "steps": [{"name": "s", "bash": "n=$(cat | wc -c); echo read $n bytes"}]},
	  "after": {"needs": ["reader"], "executor": {"type": "local", "copyRepo": false},
	            "steps": [{"name": "s", "bash": "echo after ran"}]}}}`
	dir := t.TempDir()
	cmd := exec.Command("bash", "-s", "--", "--log-format", "simple", "--run-dir", filepath.Join(dir, "run"))
	cmd.Stdin = bytes.NewReader(compile(t, g))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"[reader/s] read 0 bytes", "[after/s] after ran"} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestRunDirOneRun gives two runs one --run-dir: the second is refused
// (exit 2) while the first runs, and after it, and touches nothing of it,
// NIXFLOW_KEEP=0 included.
func TestRunDirOneRun(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock is not installed")
	}
	const g = `{"version": 1, "name": "rundir", "jobs": {
	  "a": {"executor": {"type": "local", "copyRepo": false},
	        "steps": [{"name": "s", "bash": "echo go > \"$DIR/started\"; until test -e \"$DIR/go-on\"; do sleep 0.05; done; echo done"}]}}}`
	dir, f := scriptFile(t, g)
	runDir := filepath.Join(dir, "run")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(env ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "bash", f, "--log-format", "simple", "--run-dir", runDir)
		cmd.Env = append(append(os.Environ(), "DIR="+dir), env...)
		cmd.Dir = dir
		return cmd
	}
	first := run()
	var out1 bytes.Buffer
	first.Stdout, first.Stderr = &out1, &out1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
			break
		}
		if i > 600 {
			t.Fatalf("the first run did not start:\n%s", out1.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := run("NIXFLOW_KEEP=0").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "another run is using it") {
		t.Errorf("a second run in a busy --run-dir: exit %d, output:\n%s", code, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "go-on"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("the first run: %v\n%s", err, out1.String())
	}
	out, err = run("NIXFLOW_KEEP=0").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "it holds a run already") {
		t.Errorf("a run in a used --run-dir: exit %d, output:\n%s", code, out)
	}
	log, err := os.ReadFile(filepath.Join(runDir, "logs", "a.log"))
	if err != nil || strings.Count(string(log), "job_start") != 1 || !strings.Contains(string(log), "done") {
		t.Errorf("the first run's log: %v\n%s", err, log)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// sshServer is a real sshd (sshdtest's: a loopback address and a HOME of
// its own, so that a login shell's run leaves nothing in the real home).
type sshServer struct{ *sshdtest.Server }

func startSSHD(t *testing.T) *sshServer {
	t.Helper()
	ok, why := sshdtest.Available()
	testenv.Need(t, "sshd", ok, why)
	srv, err := sshdtest.Start(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return &sshServer{srv}
}

func (s *sshServer) command(args ...string) *exec.Cmd {
	return exec.Command("ssh", append(append(s.SSHArgs(), "-T", s.Addr), args...)...)
}

// TestOverSSH pipes compiled workflows to a real sshd: `ssh host < result`
// runs them with the remote login shell; jobs run, a failure propagates
// to the exit status, cleanup jobs run.
func TestOverSSH(t *testing.T) {
	s := startSSHD(t)
	remote := t.TempDir()
	const g = `{"version": 1, "name": "remote", "jobs": {
	  "build": {"executor": {"type": "local", "copyRepo": false},
	            "steps": [{"name": "s", "bash": "echo built on $(hostname) > out.txt; echo building"}], "outputs": {"bin": "out.txt"}},
	  "test": {"needs": ["build"], "inputs": ["bin"], "executor": {"type": "local", "copyRepo": false},
	           "steps": [{"name": "s", "bash": "cat out.txt; exit ${FAIL:-0}"}]},
	  "cleanup": {"needs": ["test"], "condition": "always()", "executor": {"type": "local", "copyRepo": false},
	              "steps": [{"name": "s", "bash": "echo cleaning up"}]}}}`
	p := plan(t, g)
	// FAIL is declared, so the host's value overrides it.
	p.Env = map[string]string{"FAIL": "0"}
	out, _, err := script.Compile(p, script.Options{Source: "remote.json", MaxParallel: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"login shell", nil, 0, []string{"build/s │ building", "test/s │ built on", "cleanup/s │ cleaning up", "succeeded in"}},
		{"bash -s with flags", []string{"bash", "-s", "--", "--log-format", "simple", "--env", "FAIL=4"}, 1,
			[]string{"[test/s] step failed: failed with exit status 4", "[cleanup/s] cleaning up", "failed (step failure)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"cd", remote, "&&", "NIXFLOW_LOG_FORMAT=simple", "NIXFLOW_KEEP=0", "XDG_STATE_HOME=" + remote}, tc.args...)
			if len(tc.args) == 0 {
				args = nil // ssh HOST < result: the login shell reads the script
			}
			cmd := s.command(args...)
			cmd.Stdin = bytes.NewReader(out)
			cmd.Env = append(os.Environ(), "NIXFLOW_LOG_FORMAT=simple")
			got, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit status %d, want %d:\n%s", code, tc.code, got)
			}
			// The login shell's run used the remote user's state directory
			// (the server's HOME, not the real one).
			if len(tc.args) == 0 {
				m := regexp.MustCompile(`(?m)^run directory: (/\S+/nixflow/runs/\S+)$`).FindSubmatch(got)
				if m == nil || !strings.HasPrefix(string(m[1]), s.Home+"/") {
					t.Errorf("the run directory is not in the server's HOME %s:\n%s", s.Home, got)
				}
			}
			for _, w := range tc.want {
				if !regexp.MustCompile(regexp.QuoteMeta(w)).Match(got) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
		})
	}
	// NIXFLOW_KEEP=0 left nothing in the remote state directory.
	if entries, _ := os.ReadDir(filepath.Join(remote, "nixflow", "runs")); len(entries) != 0 {
		t.Errorf("runs left behind: %v", entries)
	}
}

// A host that lacks the store paths of the steps' deps and has no
// nix-store is told, before anything runs, which paths are missing and how
// to copy them; the exit status is 3 (infrastructure).
func TestMissingDeps(t *testing.T) {
	const g = `{"version": 1, "name": "deps", "jobs": {
	  "a": {"executor": {"type": "local", "copyRepo": false},
	        "steps": [{"name": "s", "bash": "echo should not run", "deps": [{"path": "/nix/store/00000000000000000000000000000000-absent", "drv": "/nix/store/00000000000000000000000000000000-absent.drv"}]}]}}}`
	dir := t.TempDir()
	// A PATH with the tools the script needs, and no nix-store.
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"bash", "mkdir", "mkfifo", "rm", "cp", "mv", "cat", "tail", "sed", "grep", "sort", "cut", "tar", "dirname", "mktemp", "chmod", "getconf"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s is not installed", tool)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	f := filepath.Join(dir, "result")
	if err := os.WriteFile(f, compile(t, g), 0o755); err != nil {
		t.Fatal(err)
	}
	bash, _ := exec.LookPath("bash")
	cmd := exec.Command(bash, f, "--run-dir", filepath.Join(dir, "run"))
	cmd.Env = []string{"PATH=" + bin, "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("err = %v, want exit status 3:\n%s", err, out)
	}
	want := "error: store paths the steps need are missing here, and there is no nix-store to build them:\n" +
		"  /nix/store/00000000000000000000000000000000-absent\n" +
		"hint: copy them from a machine that has them: nix copy --to ssh://HOST /nix/store/00000000000000000000000000000000-absent\n" +
		"hint: or all the script needs at once: nix copy --to ssh://HOST $(nix-store -qR ./result)\n"
	if string(out) != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if strings.Contains(string(out), "should not run") {
		t.Error("a step ran")
	}
}

// TestOverSSHDropped kills the ssh client of `ssh host < result` while the
// run goes on remotely: sshd sends the remote script no signal, so the
// script itself notices that its caller is gone and its output goes
// nowhere, and cancels the run: the steps (a chatty one and a quiet one,
// with a grandchild) are stopped, the cleanup job runs, and nothing of the
// run is left running on the "remote" host.
func TestOverSSHDropped(t *testing.T) {
	s := startSSHD(t)
	remote := t.TempDir()
	pids := filepath.Join(remote, "pids")
	if err := os.Mkdir(pids, 0o755); err != nil {
		t.Fatal(err)
	}
	g := fmt.Sprintf(`{"version": 1, "name": "dropped", "jobs": {
	  "chatty": {"executor": {"type": "local", "copyRepo": false},
	             "steps": [{"name": "s", "bash": "echo $$ > %[1]s/chatty.pid; echo $PPID > %[1]s/chatty-job.pid; ps -o ppid= -p $PPID > %[1]s/main.pid; while :; do echo tick; sleep 0.1; done"}]},
	  "quiet": {"executor": {"type": "local", "copyRepo": false},
	            "steps": [{"name": "s", "bash": "sleep 300 & echo $! > %[1]s/grandchild.pid; echo $$ > %[1]s/quiet.pid; wait"}]},
	  "cleanup": {"needs": ["chatty", "quiet"], "condition": "always()", "executor": {"type": "local", "copyRepo": false},
	              "steps": [{"name": "s", "bash": "echo \"$NEEDS_CHATTY_RESULT $NEEDS_QUIET_RESULT\" > %[1]s/cleanup.txt"}]}}}`, pids)
	out, _, err := script.Compile(plan(t, g), script.Options{Source: "dropped.json", MaxParallel: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"login shell", nil},
		{"bash -s", []string{"cd", remote, "&&", "XDG_STATE_HOME=" + remote, "bash", "-s", "--", "--log-format", "simple"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, _ := filepath.Glob(filepath.Join(pids, "*"))
			for _, f := range files {
				os.Remove(f)
			}
			cmd := s.command(tc.args...)
			cmd.Stdin = bytes.NewReader(out)
			cmd.Env = append(os.Environ(), "NIXFLOW_LOG_FORMAT=simple")
			var got bytes.Buffer
			cmd.Stdout, cmd.Stderr = &got, &got
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the steps to start", func() bool {
				for _, f := range []string{"chatty.pid", "main.pid", "quiet.pid", "grandchild.pid"} {
					if data, err := os.ReadFile(filepath.Join(pids, f)); err != nil || len(bytes.TrimSpace(data)) == 0 {
						return false
					}
				}
				return true
			})
			mainPid, err := os.ReadFile(filepath.Join(pids, "main.pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(mainPid)))
			if err != nil {
				t.Fatalf("main.pid: %q", mainPid)
			}
			sid := sessionOf(t, pid)
			// The client dies; sshd closes the session without a signal.
			cmd.Process.Kill()
			cmd.Wait()
			var procs []int
			for _, f := range []string{"main.pid", "chatty.pid", "chatty-job.pid", "quiet.pid", "grandchild.pid"} {
				data, _ := os.ReadFile(filepath.Join(pids, f))
				pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
				if err != nil {
					t.Fatalf("%s: %q", f, data)
				}
				procs = append(procs, pid)
			}
			// ps on the "remote": no process of the run's session is left
			// (the steps' own process groups are in it too), nor any
			// process it started.
			t.Cleanup(func() {
				if t.Failed() {
					// What was left, for the log.
					out, _ := exec.Command("ps", "-eo", "pid,ppid,sid,stat,etime,args").Output()
					for _, line := range strings.Split(string(out), "\n") {
						if f := strings.Fields(line); len(f) > 2 && (f[2] == strconv.Itoa(sid) || f[0] == "PID") {
							t.Log(line)
						}
					}
				}
			})
			waitFor(t, "the remote run to end", func() bool {
				for _, pid := range procs {
					if alive(pid) {
						return false
					}
				}
				out, err := exec.Command("ps", "-eo", "sid=,stat=").Output()
				if err != nil {
					t.Fatalf("ps: %v", err)
				}
				for _, line := range strings.Split(string(out), "\n") {
					if f := strings.Fields(line); len(f) == 2 && f[0] == strconv.Itoa(sid) && !strings.HasPrefix(f[1], "Z") {
						return false
					}
				}
				return true
			})
			data, err := os.ReadFile(filepath.Join(pids, "cleanup.txt"))
			if err != nil {
				t.Fatalf("the cleanup job did not run: %v\noutput before the drop:\n%s", err, got.String())
			}
			if string(data) != "cancelled cancelled\n" {
				t.Errorf("cleanup saw %q, want the two jobs cancelled", data)
			}
			if m := regexp.MustCompile(`run directory: (/\S+)`).FindStringSubmatch(got.String()); m != nil {
				os.RemoveAll(m[1])
			}
		})
	}
}

// sessionOf returns the session of a process.
func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	out, err := exec.Command("ps", "-o", "sid=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		t.Fatalf("ps -p %d: %v", pid, err)
	}
	sid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("ps -p %d: %q", pid, out)
	}
	return sid
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// waitFor polls cond, with a generous bound for a loaded machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeepChainLinear: a chain of 3,000 jobs compiles to a script that
// grows with the jobs, not with their square. Only failure() and
// expression conditions carry the jobs a job needs transitively (here
// one job at the end).
func TestDeepChainLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"version": 1, "name": "chain", "jobs": {`)
	const n = 3000
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"j%04d": {"steps": [{"bash": "true"}]`, i)
		if i > 0 {
			fmt.Fprintf(&b, `, "needs": ["j%04d"]`, i-1)
		}
		b.WriteString("}")
	}
	fmt.Fprintf(&b, `, "last": {"condition": "failure()", "needs": ["j%04d"], "steps": [{"bash": "true"}]}}}`, n-1)
	out := compile(t, b.String())
	// About 600 bytes a job, and one list of the 3,000 ancestors (about
	// 15 KB); the square would be over 10 MB.
	if len(out) > 3<<20 {
		t.Errorf("the script of a chain of %d jobs is %d bytes", n, len(out))
	}
}

// TestResultNotRecorded: a run whose result.json cannot be written says
// so once, as nixflow run does, in every format, and ends as it would.
func TestResultNotRecorded(t *testing.T) {
	const g = `{"version": 1, "name": "norecord", "jobs": {
	  "a": {"executor": {"type": "local", "copyRepo": false},
	        "steps": [{"name": "s", "bash": "mkdir \"$RUNDIR/result.json\""}]}}}`
	dir, f := scriptFile(t, g)
	for _, format := range []string{"simple", "json"} {
		runDir := filepath.Join(dir, "run-"+format)
		cmd := exec.Command("bash", f, "--log-format", format, "--run-dir", runDir)
		cmd.Env = append(os.Environ(), "RUNDIR="+runDir)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s: %v, stderr:\n%s", format, err, stderr.String())
		}
		want := "warning: the run's result was not recorded: Is a directory\n"
		if got := stderr.String(); !strings.Contains(got, want) || strings.Count(got, "result.json") > 0 {
			t.Errorf("%s: stderr %q, want %q once", format, got, want)
		}
	}
}

// TestJobLogNotWritten: a job log that cannot be written (here, a step
// makes it a directory) is said once, as nixflow run says it, and the
// step's lines still reach the console.
func TestJobLogNotWritten(t *testing.T) {
	const g = `{"version": 1, "name": "nolog", "jobs": {
	  "a": {"executor": {"type": "local", "copyRepo": false},
	        "steps": [{"name": "break", "bash": "rm \"$RUNDIR/logs/a.log\"; mkdir \"$RUNDIR/logs/a.log\""},
	                  {"name": "print", "bash": "echo one; echo two; echo three"}]}}}`
	dir, f := scriptFile(t, g)
	runDir := filepath.Join(dir, "run")
	cmd := exec.Command("bash", f, "--log-format", "simple", "--run-dir", runDir)
	cmd.Env = append(os.Environ(), "RUNDIR="+runDir)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v, stderr:\n%s", err, stderr.String())
	}
	for _, l := range []string{"[a/print] one", "[a/print] two", "[a/print] three"} {
		if !strings.Contains(stdout.String(), l+"\n") {
			t.Errorf("stdout lacks %q:\n%s", l, stdout.String())
		}
	}
	want := "warning: job a: writing its log " + runDir + "/logs/a.log failed: open " + runDir + "/logs/a.log: is a directory (the run goes on without it)\n"
	if got := stderr.String(); got != want {
		t.Errorf("stderr:\n%s\nwant the warning once, and nothing else:\n%s", got, want)
	}
}

// scriptFile compiles graph into s.sh in a new temporary directory, and
// returns the directory and the script's path.
func scriptFile(t *testing.T, graph string) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "s.sh")
	if err := os.WriteFile(file, compile(t, graph), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// TestResultOnFullDisk: a run directory with no room left for the
// result gets none, rather than half of one, and says so once.
func TestResultOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	const g = `{"version": 1, "name": "full", "jobs": {
	  "a": {"executor": {"type": "local", "copyRepo": false},
	        "steps": [{"name": "s", "bash": "head -c 100M /dev/zero > \"$RUNDIR/fill\" || true"}]},
	  "b": {"needs": ["a"], "executor": {"type": "local", "copyRepo": false},
	        "steps": [{"name": "s", "bash": "for i in $(seq 50); do echo line $i; done"}]}}}`
	dir, f := scriptFile(t, g)
	runDir := filepath.Join(dir, "run")
	if err := os.Mkdir(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", runDir).CombinedOutput(); err != nil {
		t.Skipf("mount a tmpfs: %v: %s", err, out)
	}
	defer exec.Command("umount", runDir).Run()
	report := filepath.Join(runDir, "report.xml")
	if err := os.WriteFile(report, []byte("an earlier run's report\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", f, "--log-format", "simple", "--run-dir", runDir, "--junit", report)
	cmd.Env = append(os.Environ(), "RUNDIR="+runDir)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	// Each failure said once, with its reason, as nixflow run says it;
	// no word of bash's for each line or event it could not write. (a's
	// log, begun before the disk filled, still has room in its page.)
	want := []string{
		"warning: job b: writing its log " + runDir + "/logs/b.log failed: write " + runDir + "/logs/b.log: no space left on device (the run goes on without it)",
		"error: write the JUnit report: write " + report + ": no space left on device",
		"warning: the run's result was not recorded: No space left on device",
	}
	got := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
	if !strings.Contains(stdout.String(), "[b/s] line 50\n") {
		t.Errorf("b's lines did not reach the console:\n%s", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(runDir, "result.json")); !os.IsNotExist(err) {
		data, _ := os.ReadFile(filepath.Join(runDir, "result.json"))
		t.Errorf("result.json on a full disk: %v, %q; want none", err, data)
	}
	// The report of the earlier run is left as it was, not half replaced.
	if data, err := os.ReadFile(report); err != nil || string(data) != "an earlier run's report\n" {
		t.Errorf("the earlier report: %q, %v", data, err)
	}
	if left, _ := filepath.Glob(filepath.Join(runDir, "*.*[0-9]")); len(left) > 0 {
		t.Errorf("left: %q", left)
	}
	if left, _ := filepath.Glob(filepath.Join(runDir, "result.json*")); len(left) > 0 {
		t.Errorf("left: %q", left)
	}

	// The script's own temporary directory on the full disk too (one
	// file system for everything): the run's record is then incomplete,
	// and the report is not replaced by half of one, nor is that silent.
	tmp := filepath.Join(runDir, "tmp")
	os.Remove(filepath.Join(runDir, "fill"))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("bash", f, "--log-format", "simple", "--run-dir", filepath.Join(runDir, "again"), "--junit", report)
	cmd.Env = append(os.Environ(), "RUNDIR="+runDir, "TMPDIR="+tmp)
	cmd.Dir = dir
	stderr.Reset()
	cmd.Stderr = &stderr
	err := cmd.Run()
	if data, _ := os.ReadFile(report); string(data) != "an earlier run's report\n" {
		t.Errorf("the earlier report, TMPDIR on the full disk: %q", data)
	}
	if !strings.Contains(stderr.String(), "error: write the JUnit report: ") || err == nil {
		t.Errorf("TMPDIR on the full disk: %v, stderr:\n%s\nwant the JUnit report's error", err, stderr.String())
	}
}
