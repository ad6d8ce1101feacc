package ssh

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeKillcookie runs step.sh's killcookie for the step with cookie
// c00k1e against a /proc of one process, 4242, with environ as its
// environment. The runner's reads of the process's stat go through serve,
// shell code run with the number of reads before it as $1 that calls
// "stat STATE ENV_END" (fields 3 and 51) to say what the read sees; so
// each of the scan's looks is decided in advance, with no clock involved
// (sleep does nothing, and SECONDS stays 0). kill records its arguments in $nf_test_killed
// and empties the environment, and serve may set it with "environ TEXT". It returns the number of
// reads and the kill calls.
func fakeKillcookie(t *testing.T, environ, serve string) (int, string) {
	t.Helper()
	from := strings.Index(stepScript, "# killcookie kills")
	to := strings.Index(stepScript, "\n{\n")
	if from < 0 || to < from {
		t.Fatal("no killcookie in step.sh")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "4242")
	// The step is 4241: the runner looks at the pids allocated since.
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "sys", "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sys", "kernel", "ns_last_pid"), []byte("4242\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"stat": "", "environ": environ} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	killed := filepath.Join(t.TempDir(), "killed")
	harness := `set -u
n=0 zeros=$(printf '0 %.0s' {4..50}) pid=4241 cookie=c00k1e
stat() { line="4242 (sleep) $1 $zeros$2 0"; }
environ() { printf "$1" > "$root/4242/environ"; }
serve() {
` + serve + `
}
read() {
  if [ "$#" = 2 ] && [ "$1" = -r ] && [ "$2" = s ]; then
    SECONDS=0 # no clock: the looks' time never runs out
    serve "$n"; n=$((n+1))
    printf -v "$2" '%s' "$line"
    return 0
  fi
  builtin read "$@"
}
kill() { printf '%s\n' "$*" >> "$nf_test_killed"; : > "$root/4242/environ"; }
sleep() { :; }
`
	script := harness + strings.ReplaceAll(stepScript[from:to], "/proc/", root+"/") + "\nkillcookie\necho \"$n\"\n"
	x := exec.Command("bash", "--noprofile", "--norc", "-c", script)
	x.Env = append(os.Environ(), "root="+root, "nf_test_killed="+killed)
	x.Stderr = os.Stderr
	out, err := x.Output()
	if err != nil {
		t.Fatalf("killcookie: %v; %s", err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("killcookie printed %q", out)
	}
	calls, _ := os.ReadFile(killed)
	return n, string(calls)
}

// TestKillcookieLongExec: a process of the step caught executing a
// program for longer than many looks (a loaded machine) shows an empty
// environment, and 0 as its end, all that while; the runner looks again
// until its environment shows the cookie, and kills it. (Before, it gave
// up after five more looks, about 50 ms.)
func TestKillcookieLongExec(t *testing.T) {
	const looks = 300
	n, calls := fakeKillcookie(t, "", fmt.Sprintf(`
if [ "$1" -lt %d ]; then stat R 0
elif [ "$1" = %d ]; then environ 'HOME=/root\0NIXFLOW_STEP_COOKIE=c00k1e\0'; stat S 140735201812461
elif [ -e "$nf_test_killed" ]; then stat Z 0
else stat S 140735201812461
fi`, looks, looks))
	if calls != "-s KILL 4242\n" {
		t.Errorf("kill calls %q, want one: -s KILL 4242", calls)
	}
	// A read of stat for each look at the executing process; then one
	// that finds the cookie, one more look (a process was killed), and
	// the wait for its end.
	if want := looks + 3; n != want {
		t.Errorf("stat read %d times, want %d", n, want)
	}
}

// TestKillcookieEmptyEnvironment: a process started with an empty
// environment (env -i), the same end of it before and after a second
// read, is not the step's: one look, no kill.
func TestKillcookieEmptyEnvironment(t *testing.T) {
	n, calls := fakeKillcookie(t, "", "stat S 140735201812461")
	if calls != "" || n != 2 {
		t.Errorf("kill calls %q, stat read %d times; want none, and one look: 2", calls, n)
	}
}

// TestKillcookieExecBetweenReads: a process whose exec ends between the
// runner's two reads of its stat (ends that differ) is looked at again,
// and killed.
func TestKillcookieExecBetweenReads(t *testing.T) {
	_, calls := fakeKillcookie(t, "", `
case $1 in
0) stat R 140735201800000;;
1) environ 'NIXFLOW_STEP_COOKIE=c00k1e\0'; stat S 140735201812461;;
*) if [ -e "$nf_test_killed" ]; then stat Z 0; else stat S 140735201812461; fi;;
esac`)
	if calls != "-s KILL 4242\n" {
		t.Errorf("kill calls %q, want one", calls)
	}
}
