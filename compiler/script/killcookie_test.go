package script

import (
	"fmt"
	"testing"

	"github.com/nixflow/nixflow/internal/procsh"
	"github.com/nixflow/nixflow/internal/proctest"
)

// fakeKillCookie runs the runtime's nf_kill_cookie for the step 4241
// with cookie c00k1e against a /proc of one process, 4242, with environ
// as its environment, serve deciding what each read of its stat sees (see
// proctest). It returns the number of reads and the kill calls.
func fakeKillCookie(t *testing.T, environ, serve string) (int, string) {
	t.Helper()
	return proctest.Run(t, runtime+"\n"+procsh.Bash, "set -u\nnf_kill_cookie c00k1e 4241", nil, environ, serve)
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

// TestKillCookieEmptyEnvironment: a process whose environment reads
// empty with the same end before and after a second read (started with
// env -i, or the kernel setting its environment up) gets five more looks,
// not the scan's whole time, and no kill.
func TestKillCookieEmptyEnvironment(t *testing.T) {
	t.Parallel()
	n, calls := fakeKillCookie(t, "", "stat S 140735201812461")
	if calls != "" || n != 12 {
		t.Errorf("kill calls %q, stat read %d times; want none, and six looks of 2 reads: 12", calls, n)
	}
}

// TestKillCookieEnvironmentSetUp: a process whose environment read empty
// with an end that stays, then shows the cookie (the kernel was setting
// it up), is killed.
func TestKillCookieEnvironmentSetUp(t *testing.T) {
	t.Parallel()
	_, calls := fakeKillCookie(t, "", `
if [ "$1" = 6 ]; then environ 'NIXFLOW_COOKIE=c00k1e\0'; fi
if [ -e "$nf_test_killed" ]; then stat Z 0; else stat S 140735201812461; fi`)
	if calls != "-KILL 4242\n" {
		t.Errorf("kill calls %q, want one", calls)
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

// TestKillCookieMainThreadEnded: a process whose main thread has ended
// (its environment reads empty, or cannot be opened, through its pid, so
// grep does not see it) is looked at through a thread that lives, and
// killed; not a zombie with no other thread.
func TestKillCookieMainThreadEnded(t *testing.T) {
	t.Parallel()
	proctest.CheckMainEnded(t, "A=1\x00NIXFLOW_COOKIE=c00k1e\x00", "-KILL 4242\n", true, func(environ, serve string) string {
		_, calls := fakeKillCookie(t, environ, serve)
		return calls
	})
}

// TestStopWatcher: the script's cleanup ends the watcher of its parent
// only while its pid is still the watcher's (the same start time): the
// watcher may have ended long before, and its pid gone to another
// process.
func TestStopWatcher(t *testing.T) {
	t.Parallel()
	// The fake /proc's process 4242 started at 0 (field 22).
	for _, c := range []struct{ watcher, want string }{
		{"4242 0", "4242\n"},
		{"4242 77", ""},
		{"4243 0", ""}, // gone
		{"", ""},
	} {
		_, calls := proctest.Run(t, runtime+"\n"+procsh.Bash, "set -u\nnf_watcher='"+c.watcher+"'\nnf_stop_watcher", nil, "", "stat S 0")
		if calls != c.want {
			t.Errorf("watcher %q: kill calls %q, want %q", c.watcher, calls, c.want)
		}
	}
}
