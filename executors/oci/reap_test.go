package oci

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeReap runs reapScript with cookie against a /proc of one process,
// pid 4242, with environ as its environment. The script's reads of the
// process's stat go through serve, shell code run with the number of
// reads before it as $1 that calls "stat STATE ENV_END" (field 3 and
// field 51) to say what the read sees; so each pass of the scan is
// decided in advance, with no clock involved (SECONDS stays 0). kill
// records its arguments in $killed, and serve may set the environment
// with "environ TEXT". It returns the number of reads and the kill
// calls.
func fakeReap(t *testing.T, cookie, environ, serve string) (int, string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "4242")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"stat": "", "environ": environ} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
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
  if [ "$#" = 2 ] && [ "$1" = -r ] && { [ "$2" = st ] || [ "$2" = st2 ]; }; then
    SECONDS=0 # no clock: the looks' time never runs out
    serve "$n"; n=$((n+1))
    printf -v "$2" '%s' "$line"
    return 0
  fi
  builtin read "$@"
}
kill() { printf '%s\n' "$*" >> "$killed"; }
`
	script := harness + strings.ReplaceAll(reapScript, "/proc/", root+"/") + "echo \"$n\"\n"
	x := exec.Command("bash", "-c", script, "nixflow-reap", cookie)
	x.Env = append(os.Environ(), "root="+root, "killed="+killed)
	x.Stderr = os.Stderr
	out, err := x.Output()
	if err != nil {
		t.Fatalf("reap: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("reap printed %q", out)
	}
	calls, _ := os.ReadFile(killed)
	return n, string(calls)
}

// TestReapLongExec: a leftover of the step caught in an exec that lasts
// longer than hundreds of the scan's passes (a loaded machine) shows an
// empty environment, and 0 as its end, all that while; the scan waits
// for it and kills it once its environment shows the step's cookie.
// (Before, the scan gave up after 200 passes, and the leftover lived on
// in a shared container: TestSharedMode failed so in CI.)
func TestReapLongExec(t *testing.T) {
	const passes = 300 // each reads stat twice: before and after environ
	n, calls := fakeReap(t, "c00k1e", "", fmt.Sprintf(`
if [ "$1" -lt %d ]; then stat R 0
elif [ "$1" = %d ]; then environ 'HOME=/root\0%s=c00k1e\0'; stat S 140735201812461
elif [ -e "$killed" ]; then stat Z 0
else stat S 140735201812461
fi`, 2*passes, 2*passes, cookieVar))
	if calls != "-9 4242\n" {
		t.Errorf("kill calls %q, want one: -9 4242", calls)
	}
	if want := 2*passes + 2; n != want {
		t.Errorf("the scan read stat %d times, want %d: %d passes with the exec under way, one that kills, one that sees the zombie", n, want, passes)
	}
}

// TestReapEmptyEnvironment: a process started with an empty environment
// (env -i), the same end of it before and after its read, is not the
// step's: one pass, no kill, and no pass again for it.
func TestReapEmptyEnvironment(t *testing.T) {
	n, calls := fakeReap(t, "c00k1e", "", "stat S 140735201812461")
	if calls != "" || n != 2 {
		t.Errorf("kill calls %q, stat read %d times; want none, and one pass: 2", calls, n)
	}
}

// TestReapExecBetweenReads: a process whose exec ends between the scan's
// read of its environment (empty) and its second read of stat (an end
// that is not the first's) is looked at again on the next pass, and
// killed there.
func TestReapExecBetweenReads(t *testing.T) {
	n, calls := fakeReap(t, "c00k1e", "", fmt.Sprintf(`
case $1 in
0) stat R 140735201800000;;
1) environ '%s=c00k1e\0'; stat S 140735201812461;;
*) if [ -e "$killed" ]; then stat Z 0; else stat S 140735201812461; fi;;
esac`, cookieVar))
	if calls != "-9 4242\n" || n != 4 {
		t.Errorf("kill calls %q, stat read %d times; want one kill, and 4 reads", calls, n)
	}
}

// TestReapOtherEnvironment: a process whose environment holds another
// step's cookie is left alone, and the scan ends with its first pass.
func TestReapOtherEnvironment(t *testing.T) {
	n, calls := fakeReap(t, "c00k1e", cookieVar+"=other\x00PATH=/bin\x00", "stat S 140735201812461")
	if calls != "" || n != 1 {
		t.Errorf("kill calls %q, stat read %d times; want none, and one read", calls, n)
	}
}
