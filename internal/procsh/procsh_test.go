package procsh_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/nixflow/nixflow/executors/executortest"
	"github.com/nixflow/nixflow/internal/procsh"
)

// TestThreadEnvAnotherUser: a scan that is not root's (nobody's, 65534,
// here) reads the environment of a process of its user whose main thread
// has ended (its own environ cannot be opened: EACCES) through a live
// thread, and leaves root's process alone; root's scan reads both.
func TestThreadEnvAnotherUser(t *testing.T) {
	_, mainexit := executortest.MainExitAsOthers(t)
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	env := append(os.Environ(), "NF_TEST_MARK=found")
	start := func(cmd *exec.Cmd) int {
		t.Helper()
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd.Process.Pid
	}
	// Both with their main thread ended: root's environment fails to
	// open (ESRCH) for root too, since Linux 6.15.
	ended := exec.Command(mainexit)
	ended.SysProcAttr = nobody
	nobodys := start(ended)
	roots := start(exec.Command(mainexit))
	for _, pid := range []int{nobodys, roots} {
		executortest.WaitMainEnded(t, pid)
	}

	look := func(as *syscall.SysProcAttr) string {
		t.Helper()
		script := procsh.Bash + `
for p in "$@"; do
  e=()
  if nf_thread_env "$p"; then
    for kv in "${e[@]}"; do [[ $kv != NF_TEST_MARK=* ]] || echo "$p ${kv#*=}"; done
  else
    echo "$p unread"
  fi
done`
		cmd := exec.Command("bash", "--noprofile", "--norc", "-c", script, "bash", fmt.Sprint(nobodys), fmt.Sprint(roots))
		cmd.SysProcAttr, cmd.Stderr = as, os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("the look: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if got, want := look(nobody), fmt.Sprintf("%d found\n%d unread", nobodys, roots); got != want {
		t.Errorf("as nobody:\n%s\nwant:\n%s", got, want)
	}
	if got, want := look(nil), fmt.Sprintf("%d found\n%d found", nobodys, roots); got != want {
		t.Errorf("as root:\n%s\nwant:\n%s", got, want)
	}
}
