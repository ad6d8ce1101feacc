package script

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWaitGoneCutShort: a wake-up (SIGUSR1, the first Ctrl-C passed on
// to a job) that cuts nf_wait_gone's wait short while the step ends gives
// the step's own status, not 138. The trap here releases the step and
// waits, in a foreground command, until bash has reaped it: the wait it
// cut short then returns 138 with the step gone, which is what a Ctrl-C
// landing as a step ends did, in one run of four.
func TestWaitGoneCutShort(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	rt := filepath.Join(dir, "runtime.bash")
	if err := os.WriteFile(rt, []byte(runtime), 0o644); err != nil {
		t.Fatal(err)
	}
	harness := `source "$1"
nf_state=$2
fifo=$2/fifo
mkfifo "$fifo"
{ read -r _ <"$fifo"; exit 5; } &
child=$!
trap 'nf_on_wake; echo go >"$fifo"; sleep 0.3' USR1
(sleep 0.2; kill -USR1 $$) &
nf_wait_gone "$child"
echo "status $nf_rc"`
	out, err := exec.Command(bash, "-c", harness, "bash", rt, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "status 5" {
		t.Errorf("nf_wait_gone: %q, want the step's status 5", got)
	}
}
