package script

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/internal/procsh"
)

// fakeKillCookie runs the runtime's nf_kill_cookie for the step 4241
// with cookie c00k1e against a /proc of one process, 4242, with environ
// as its environment. The reads of the process's stat go through serve,
// shell code run with the number of reads before it as $1 that calls
// "stat STATE ENV_END" (fields 3 and 51) to say what the read sees; so
// each look is decided in advance, with no clock involved (nf_sleep_ms
// does nothing, and SECONDS stays 0). kill records its arguments in $nf_test_killed and
// empties the environment, and serve may set it with "environ TEXT". It
// returns the number of reads and the kill calls.
func fakeKillCookie(t *testing.T, environ, serve string) (int, string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"self", "sys/kernel", "4242"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range map[string]string{"4242/stat": "", "4242/environ": environ, "sys/kernel/ns_last_pid": "4242\n"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	killed := filepath.Join(t.TempDir(), "killed")
	harness := `n=0 zeros=$(printf '0 %.0s' {4..50})
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
nf_sleep_ms() { :; }
`
	script := strings.ReplaceAll(runtime+"\n"+procsh.Bash, "/proc/", root+"/") + harness +
		"set -u\nnf_kill_cookie c00k1e 4241\necho \"$n\"\n"
	file := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	x := exec.Command("bash", "--noprofile", "--norc", file)
	x.Env = append(os.Environ(), "root="+root, "nf_test_killed="+killed)
	x.Stderr = os.Stderr
	out, err := x.Output()
	if err != nil {
		t.Fatalf("nf_kill_cookie: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("nf_kill_cookie printed %q", out)
	}
	calls, _ := os.ReadFile(killed)
	return n, string(calls)
}

// TestKillCookieLongExec: a process of the step caught executing a
// program for longer than many looks (a loaded machine) shows an empty
// environment, and 0 as its end, all that while; the script looks again
// until its environment shows the cookie, and kills it. (Before, it gave
// up after five more looks, about 50 ms.)
func TestKillCookieLongExec(t *testing.T) {
	t.Parallel()
	const looks = 12 // more than the five of before
	n, calls := fakeKillCookie(t, "", fmt.Sprintf(`
if [ "$1" -lt %d ]; then stat R 0
elif [ "$1" = %d ]; then environ 'HOME=/root\0NIXFLOW_COOKIE=c00k1e\0'; stat S 140735201812461
elif [ -e "$nf_test_killed" ]; then stat Z 0
else stat S 140735201812461
fi`, looks, looks))
	if calls != "-KILL 4242\n" {
		t.Errorf("kill calls %q, want one: -KILL 4242", calls)
	}
	// A read of stat for each look at the executing process; then one
	// that finds the cookie, and the wait for the process's end.
	if want := looks + 2; n != want {
		t.Errorf("stat read %d times, want %d", n, want)
	}
}

// TestKillCookieEmptyEnvironment: a process started with an empty
// environment (env -i), the same end of it before and after a second
// read, is not the step's: one look, no kill.
func TestKillCookieEmptyEnvironment(t *testing.T) {
	t.Parallel()
	n, calls := fakeKillCookie(t, "", "stat S 140735201812461")
	if calls != "" || n != 2 {
		t.Errorf("kill calls %q, stat read %d times; want none, and one look: 2", calls, n)
	}
}

// TestKillCookieFound: a process that carries the cookie is killed, and
// the script waits for its end.
func TestKillCookieFound(t *testing.T) {
	t.Parallel()
	n, calls := fakeKillCookie(t, "A=1\x00NIXFLOW_COOKIE=c00k1e\x00", `
if [ -e "$nf_test_killed" ]; then stat Z 0; else stat S 140735201812461; fi`)
	if calls != "-KILL 4242\n" || n != 1 {
		t.Errorf("kill calls %q, stat read %d times; want one kill and one read (its end)", calls, n)
	}
}
