package oci

import (
	"fmt"
	"testing"

	"github.com/nixflow/nixflow/internal/proctest"
)

// fakeReap runs reapScript with cookie against a /proc of one process,
// 4242, with environ as its environment, serve deciding what each read
// of its stat sees (see proctest). It returns the number of reads and the
// kill calls.
func fakeReap(t *testing.T, cookie, environ, serve string) (int, string) {
	t.Helper()
	return proctest.Run(t, "", reapScript, []string{cookie}, environ, serve)
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
elif [ -e "$nf_test_killed" ]; then stat Z 0
else stat S 140735201812461
fi`, 2*passes, 2*passes, cookieVar))
	if calls != "-9 4242\n" {
		t.Errorf("kill calls %q, want one: -9 4242", calls)
	}
	if want := 2*passes + 2; n != want {
		t.Errorf("the scan read stat %d times, want %d: %d passes with the exec under way, one that kills, one that sees the zombie", n, want, passes)
	}
}

// TestReapEmptyEnvironment: a process whose environment reads empty with
// the same end before and after a second read (started with env -i, or
// the kernel setting its environment up) is looked at on 200 passes more,
// as any empty environment was before, not until the scan's time runs
// out; it is not killed.
func TestReapEmptyEnvironment(t *testing.T) {
	n, calls := fakeReap(t, "c00k1e", "", "stat S 140735201812461")
	if calls != "" || n != 3*201 {
		t.Errorf("kill calls %q, stat read %d times; want none, and 201 passes of 3 reads: %d", calls, n, 3*201)
	}
}

// TestReapEnvironmentSetUp: a process whose environment was empty with an
// end that stays, then shows the cookie (the kernel was setting it up),
// is killed.
func TestReapEnvironmentSetUp(t *testing.T) {
	n, calls := fakeReap(t, "c00k1e", "", fmt.Sprintf(`
if [ "$1" = 30 ]; then environ '%s=c00k1e\0'; fi
if [ -e "$nf_test_killed" ]; then stat Z 0; else stat S 140735201812461; fi`, cookieVar))
	if calls != "-9 4242\n" || n != 32 {
		t.Errorf("kill calls %q, stat read %d times; want one kill, and 32 reads", calls, n)
	}
}

// TestReapExecBetweenReads: a process whose exec ends between the scan's
// two reads of its stat around an empty environment (ends that differ)
// is looked at again on the next pass, and killed there.
func TestReapExecBetweenReads(t *testing.T) {
	n, calls := fakeReap(t, "c00k1e", "", fmt.Sprintf(`
case $1 in
0|1) stat R 140735201800000;;
2) environ '%s=c00k1e\0'; stat S 140735201812461;;
*) if [ -e "$nf_test_killed" ]; then stat Z 0; else stat S 140735201812461; fi;;
esac`, cookieVar))
	if calls != "-9 4242\n" || n != 5 {
		t.Errorf("kill calls %q, stat read %d times; want one kill, and 5 reads", calls, n)
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

// TestReapMainThreadEnded: a process whose main thread has ended shows a
// zombie with more than one thread under its pid; it lives on in its
// other threads, and is looked at through one: killed if its environment
// holds the cookie. Its own environment reads empty, or cannot be opened
// (Linux 6.15 and later). A zombie with one thread is left alone.
func TestReapMainThreadEnded(t *testing.T) {
	proctest.CheckMainEnded(t, "A=1\x00"+cookieVar+"=c00k1e\x00", "-9 4242\n", false, func(environ, serve string) string {
		n, calls := fakeReap(t, "c00k1e", environ, serve)
		// Two passes of two reads (the main thread's stat, the other's),
		// one that kills, one that finds both ended; with one thread, a
		// pass of one read.
		if want := map[bool]int{true: 4, false: 1}[calls != ""]; n != want {
			t.Errorf("the scan read stat %d times, want %d", n, want)
		}
		return calls
	})
}
