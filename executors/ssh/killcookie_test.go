package ssh

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/internal/proctest"
)

// fakeKillcookie runs step.sh's killcookie for the step 4241 with cookie
// c00k1e against a /proc of one process, 4242, with environ as its
// environment, serve deciding what each read of its stat sees (see
// proctest). It returns the number of reads and the kill calls.
func fakeKillcookie(t *testing.T, environ, serve string) (int, string) {
	t.Helper()
	from := strings.Index(stepScript, "# killcookie kills")
	to := strings.Index(stepScript, "\n{\n")
	if from < 0 || to < from {
		t.Fatal("no killcookie in step.sh")
	}
	return proctest.Run(t, stepScript[from:to], "set -u\npid=4241 cookie=c00k1e\nkillcookie", nil, environ, serve)
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

// TestKillcookieEmptyEnvironment: a process whose environment reads
// empty with the same end before and after a second read (started with
// env -i, or the kernel setting its environment up) gets five more looks,
// not the scan's whole time, and no kill.
func TestKillcookieEmptyEnvironment(t *testing.T) {
	n, calls := fakeKillcookie(t, "", "stat S 140735201812461")
	if calls != "" || n != 12 {
		t.Errorf("kill calls %q, stat read %d times; want none, and six looks of 2 reads: 12", calls, n)
	}
}

// TestKillcookieEnvironmentSetUp: such a process that then shows the
// cookie (its environment was being set up) is killed.
func TestKillcookieEnvironmentSetUp(t *testing.T) {
	_, calls := fakeKillcookie(t, "", `
if [ "$1" = 6 ]; then environ 'NIXFLOW_STEP_COOKIE=c00k1e\0'; fi
if [ -e "$nf_test_killed" ]; then stat Z 0; else stat S 140735201812461; fi`)
	if calls != "-s KILL 4242\n" {
		t.Errorf("kill calls %q, want one", calls)
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

// TestKillcookieMainThreadEnded: a process whose main thread has ended
// (its environment reads empty, or cannot be opened, through its pid) is
// looked at through a thread that lives, and killed; not a zombie with
// no other thread.
func TestKillcookieMainThreadEnded(t *testing.T) {
	proctest.CheckMainEnded(t, "A=1\x00NIXFLOW_STEP_COOKIE=c00k1e\x00", "-s KILL 4242\n", true, func(environ, serve string) string {
		_, calls := fakeKillcookie(t, environ, serve)
		return calls
	})
}
