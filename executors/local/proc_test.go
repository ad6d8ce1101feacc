package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/executortest"
)

// fakeStat is a /proc/<pid>/stat line in state st with envEnd as field
// 51.
func fakeStat(pid int, st string, envEnd uint64) []byte {
	return fakeStatFlags(pid, st, 0, envEnd)
}

// fakeStatFlags is fakeStat with flags as field 9.
func fakeStatFlags(pid int, st string, flags, envEnd uint64) []byte {
	return fakeStatThreads(pid, st, flags, envEnd, 1)
}

// fakeStatThreads is fakeStatFlags with threads as field 20.
func fakeStatThreads(pid int, st string, flags, envEnd uint64, threads int) []byte {
	f := make([]string, 52)
	for i := range f {
		f[i] = "0"
	}
	f[0], f[1], f[2], f[8], f[19], f[50] = strconv.Itoa(pid), "(a b) c)", st, strconv.FormatUint(flags, 10), strconv.Itoa(threads), strconv.FormatUint(envEnd, 10)
	return []byte(strings.Join(f, " ") + "\n")
}

func TestStatEnvEnd(t *testing.T) {
	if n, ok := statField(fakeStat(7, "S", 140735201812461), 51); n != 140735201812461 || !ok {
		t.Errorf("statField = %d, %v", n, ok)
	}
	if _, ok := statField([]byte("7 (a) S 1 2 3\n"), 51); ok {
		t.Error("statField of a short line succeeded")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return
	}
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := statField(data, 51); n == 0 || !ok {
		t.Errorf("statField of this process = %d, %v; want its environment's end", n, ok)
	}
}

// scripted is a /proc whose reads a test decides: reads of pid's files go
// through files, one call a read, the others fail.
type scripted struct {
	pid   int
	files func(name string, n int) ([]byte, error) // n: reads of name before
	reads map[string]int
}

func (p *scripted) read(pid int, name string, _ *[]byte) ([]byte, error) {
	if pid != p.pid {
		return nil, syscall.ENOENT
	}
	if p.reads == nil {
		p.reads = map[string]int{}
	}
	n := p.reads[name]
	p.reads[name]++
	return p.files(name, n)
}

// TestLook: what look makes of a process whose environment reads empty,
// from what its stat says before and after a second read.
func TestLook(t *testing.T) {
	cookie := cookieVar + "=c00k1e\x00"
	for _, c := range []struct {
		name    string
		environ []string // the reads' answers, in turn
		stat    [][]byte
		want    int
	}{
		{"the cookie", []string{"A=1\x00" + cookie}, nil, holds},
		{"another environment", []string{"A=1\x00"}, nil, lacks},
		{"executing", []string{""}, [][]byte{fakeStat(9, "R", 0)}, inExec},
		{"exiting", []string{""}, [][]byte{fakeStatFlags(9, "R", pfExiting, 0)}, lacks},
		{"gone", []string{""}, nil, lacks},
		{"a zombie", []string{""}, [][]byte{fakeStat(9, "Z", 0)}, lacks},
		{"an empty environment", []string{"", ""}, [][]byte{fakeStat(9, "S", 77), fakeStat(9, "S", 77)}, emptyEnv},
		{"executed since the first read", []string{"", cookie}, [][]byte{fakeStat(9, "R", 55)}, holds},
		{"executed between the stat reads", []string{"", ""}, [][]byte{fakeStat(9, "R", 55), fakeStat(9, "S", 77)}, inExec},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &scripted{pid: 9, files: func(name string, n int) ([]byte, error) {
				var list [][]byte
				if name == "environ" {
					for _, e := range c.environ {
						list = append(list, []byte(e))
					}
				} else {
					list = c.stat
				}
				if n >= len(list) {
					return nil, syscall.ENOENT
				}
				return list[n], nil
			}}
			s := newCookieScan("c00k1e")
			s.read = p.read
			if got := s.look(9); got != c.want {
				t.Errorf("look = %d, want %d (reads %v)", got, c.want, p.reads)
			}
		})
	}
}

// TestLookThreads: a process whose main thread has ended (its stat: a
// zombie, or exiting, with more than one thread) is looked at through its
// first live thread, other than the main one, whose environment can be
// read; whatever its own environ file does (it reads empty before Linux
// 6.15, and fails with ESRCH, or EACCES for a user other than root,
// since).
func TestLookThreads(t *testing.T) {
	cookie := cookieVar + "=c00k1e\x00"
	ended := string(fakeStatThreads(9, "Z", 0, 0, 3))
	live := func(tid int) string { return string(fakeStat(tid, "S", 5)) }
	for _, c := range []struct {
		name    string
		threads []int
		files   map[string]string // what is read, but the process's environ
		want    int
	}{
		{"the cookie", []int{9, 10, 11}, map[string]string{"stat": ended, "task/10/stat": live(10), "task/10/environ": "A=1\x00" + cookie}, holds},
		{"another environment", []int{9, 10}, map[string]string{"stat": ended, "task/10/stat": live(10), "task/10/environ": "A=1\x00"}, lacks},
		{"the main thread exiting", []int{9, 10}, map[string]string{"stat": string(fakeStatThreads(9, "R", pfExiting, 0, 2)), "task/10/stat": live(10), "task/10/environ": cookie}, holds},
		{"an exiting thread skipped", []int{9, 10, 11}, map[string]string{
			"stat":         ended,
			"task/10/stat": string(fakeStatFlags(10, "R", pfExiting, 5)), "task/10/environ": "A=1\x00",
			"task/11/stat": live(11), "task/11/environ": cookie,
		}, holds},
		{"a thread gone meanwhile skipped", []int{9, 10, 11}, map[string]string{
			"stat":         ended,
			"task/10/stat": live(10),
			"task/11/stat": live(11), "task/11/environ": cookie,
		}, holds},
		// One thread: its count, not the other tasks listed, tells.
		{"a plain zombie", []int{9, 10}, map[string]string{"stat": string(fakeStat(9, "Z", 0)), "task/10/stat": live(10), "task/10/environ": cookie}, lacks},
		{"gone", nil, nil, lacks},
	} {
		for _, environ := range []struct {
			name string
			err  error
			// foreign: the process runs as another user (nixflow is not
			// root); its threads' environments cannot be read either.
			foreign bool
		}{{"empty", nil, false}, {"ESRCH", syscall.ESRCH, false}, {"EACCES", syscall.EACCES, false}, {"EACCES, another user's", syscall.EACCES, true}} {
			t.Run(c.name+"/"+environ.name, func(t *testing.T) {
				p := &scripted{pid: 9, files: func(name string, _ int) ([]byte, error) {
					if d, ok := c.files[name]; ok {
						return []byte(d), nil
					}
					if name == "environ" && c.threads != nil {
						return nil, environ.err
					}
					return nil, syscall.ENOENT
				}}
				s := newCookieScan("c00k1e")
				s.read = p.read
				s.threads = func(pid int) ([]int, error) {
					if pid != 9 || c.threads == nil {
						return nil, syscall.ENOENT
					}
					return c.threads, nil
				}
				s.foreign = func(pid int) bool { return pid != 9 || environ.foreign }
				want := c.want
				if environ.foreign {
					want = lacks
				}
				if got := s.look(9); got != want {
					t.Errorf("look = %d, want %d (reads %v)", got, want, p.reads)
				}
				if environ.foreign && p.reads["stat"] != 0 {
					t.Errorf("another user's process: its stat read %d times, want none", p.reads["stat"])
				}
			})
		}
	}
}

// TestCookieFindsMainThreadEnded: without a cgroup, an escapee whose main
// thread has ended (see executortest.MainExit) is found through a thread
// that lives, and killed. The step lasts longer than windowedScanLimit:
// the scan then lists /proc, which shows no thread but the main one (a
// scan of the pids allocated during the step probes its threads too).
// (The conformance scenario runs with a cgroup.)
func TestCookieFindsMainThreadEnded(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("no /proc")
	}
	setsid, err := exec.LookPath("setsid")
	if err != nil {
		t.Skip("setsid not found")
	}
	bin := executortest.MainExit(t)
	w := prepare(t, executors.JobSpec{})
	w.noCgroup = true
	res, _, stderr := run(t, w, context.Background(), setsid+" "+bin+` </dev/null >/dev/null 2>&1 &
echo $! > esc.pid
for ((i = 0; i < 500; i++)); do
  s=$(< "/proc/$!/stat")
  s=${s##*) } t=("/proc/$!/task/"*)
  if [ "${s%% *}" = Z ] && [ ${#t[@]} -gt 1 ]; then sleep 1.2; exit 0; fi
  sleep 0.01
done
echo "its main thread did not end" >&2
exit 1`)
	pid := readPID(t, filepath.Join(w.Dir(), "esc.pid"))
	defer syscall.Kill(pid, syscall.SIGKILL)
	if res.ExitCode != 0 {
		t.Fatal(stderr)
	}
	// Killed, its threads end soon after (its pid shows a zombie all along).
	for i := 0; threadsLive(pid); i++ {
		if i == 200 {
			t.Fatalf("the escapee %d survived its step", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGoneMainThreadEnded: a process whose main thread has ended is not
// gone while its other threads live (killByCookie's wait for the
// processes it killed must not end there), and is once it is killed.
func TestGoneMainThreadEnded(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	x := exec.Command(executortest.MainExit(t))
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { x.Process.Kill(); x.Wait() }()
	pid := x.Process.Pid
	executortest.WaitMainEnded(t, pid)
	buf := make([]byte, 512)
	if gone(pid, &buf) {
		t.Fatal("gone: a zombie main thread with live threads is taken for an ended process")
	}
	x.Process.Kill()
	// Its pid stays a zombie (unwaited for) with its main thread alone.
	for i := 0; !gone(pid, &buf); i++ {
		if i == 500 {
			t.Fatal("killed, it is not gone")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if threadsLive(pid) {
		t.Error("gone while a thread lives")
	}
}

// TestCookieScanAnotherUser: nixflow running as a user other than root
// (nobody, 65534, here) finds a process of its user whose main thread has
// ended, whose environ it cannot open (EACCES) but through a live thread,
// and not root's process holding the same cookie, whose environment it
// cannot read through any thread (see procForeign).
func TestCookieScanAnotherUser(t *testing.T) {
	dir, mainexit := executortest.MainExitAsOthers(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	scanner := filepath.Join(dir, "scanner")
	if data, err := os.ReadFile(self); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(scanner, data, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cookie := newCookie()
	env := append(os.Environ(), cookieVar+"="+cookie)

	ended := exec.Command(mainexit)
	ended.Env, ended.SysProcAttr = env, nobody
	if err := ended.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { ended.Process.Kill(); ended.Wait() }()
	root := exec.Command("sleep", "60")
	root.Env = env
	if err := root.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { root.Process.Kill(); root.Wait() }()
	executortest.WaitMainEnded(t, ended.Process.Pid)

	scan := exec.Command(scanner)
	scan.Env, scan.SysProcAttr = append(os.Environ(), "NIXFLOW_TEST_SCAN_COOKIE="+cookie), nobody
	scan.Stderr = os.Stderr
	out, err := scan.Output()
	if err != nil {
		t.Fatalf("the scan as nobody: %v", err)
	}
	if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("[%d]", ended.Process.Pid); got != want {
		t.Errorf("the scan as nobody found %s, want %s (nobody's process, not root's %d)", got, want, root.Process.Pid)
	}
}

// threadsLive reports whether a thread of process pid is live: neither
// a zombie nor dead.
func threadsLive(pid int) bool {
	tids, _ := procThreads(pid)
	buf := make([]byte, 512)
	for _, tid := range tids {
		data, err := readProc(pid, "task/"+strconv.Itoa(tid)+"/stat", &buf)
		if st, ok := parseStat(data); err == nil && ok && st.state != 'Z' && st.state != 'X' {
			return true
		}
	}
	return false
}

// TestLookEnvironmentEmptied: a live process started with an empty
// environment is not taken for one executing a program (each scan would
// wait for it until its time ran out), but for one whose environment is
// empty, for now or for good.
func TestLookEnvironmentEmptied(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("no /proc")
	}
	x := exec.Command("sleep", "60")
	x.Env = []string{}
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { x.Process.Kill(); x.Wait() }()
	s := newCookieScan("c00k1e")
	// Start returns once the exec is past its point of no return: it may
	// not have its environment set up yet.
	for i := 0; s.look(x.Process.Pid) == inExec; i++ {
		if i == 300 {
			t.Fatal("the process is still said to be executing a program")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.look(x.Process.Pid); got != emptyEnv {
		t.Errorf("look = %d, want emptyEnv", got)
	}
}

// realPID returns the pid of a live process of the test's, for the
// scan's listing of /proc (its files are scripted).
func realPID(t *testing.T) int {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	x := exec.Command("sleep", "60")
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Process.Kill(); x.Wait() })
	return x.Process.Pid
}

// scriptedKill runs killCookieHolders, in fake time, against a /proc
// whose reads of process pid's environ and stat files decides, given the
// number of reads of the file before and whether the scan killed it yet:
// the killed process is a zombie from then on. It returns what the scan
// says it killed, the reads of each file, and whether the scan took its
// whole time.
func scriptedKill(t *testing.T, pid int, environ func(n int, killed bool) []byte, stat []byte) (killed []int, reads map[string]int, whole bool) {
	synctest.Test(t, func(t *testing.T) {
		var kills []int
		p := &scripted{pid: pid, files: func(name string, n int) ([]byte, error) {
			switch {
			case name == "stat" && len(kills) > 0:
				return fakeStat(pid, "Z", 0), nil
			case name == "stat":
				return stat, nil
			default:
				return environ(n, len(kills) > 0), nil
			}
		}}
		s := newCookieScan("c00k1e")
		s.read = p.read
		s.kill = func(pid int) error { kills = append(kills, pid); return nil }
		start := time.Now()
		killed = killCookieHolders(s, 0, true, start.Add(killTimeout))
		reads, whole = p.reads, time.Since(start) >= killTimeout
	})
	return killed, reads, whole
}

var cookieEnv = []byte(cookieVar + "=c00k1e\x00")

// TestKillEmptyEnvironment: a process whose environment reads empty, with
// an end that stays, is looked at five times more, not until the scan's
// time runs out (a process started with env -i), and killed if its
// environment shows the cookie meanwhile (a process whose environment the
// kernel was still setting up).
func TestKillEmptyEnvironment(t *testing.T) {
	pid := realPID(t)
	stable := fakeStat(pid, "S", 140735201812461)
	killed, reads, whole := scriptedKill(t, pid, func(int, bool) []byte { return nil }, stable)
	if len(killed) != 0 || reads["environ"] != 2*6 || whole {
		t.Errorf("for good: killed %v, environ read %d times, the whole time: %v; want no kill, and six looks of two reads", killed, reads["environ"], whole)
	}
	killed, _, _ = scriptedKill(t, pid, func(n int, k bool) []byte {
		if n >= 6 && !k {
			return cookieEnv
		}
		return nil
	}, stable)
	if fmt.Sprint(killed) != fmt.Sprint([]int{pid}) {
		t.Errorf("set up meanwhile: killed %v, want %d", killed, pid)
	}
}

// TestKillWaitsForExec: a process of the step caught executing a program
// for a long time (a loaded machine) is looked at again until its
// environment shows, then killed. (Before, the scan gave up after five
// more looks, about 30 ms, and the process escaped.)
func TestKillWaitsForExec(t *testing.T) {
	pid := realPID(t)
	const looks = 60
	killed, _, _ := scriptedKill(t, pid, func(n int, k bool) []byte {
		if n < looks || k {
			return nil
		}
		return cookieEnv
	}, fakeStat(pid, "R", 0))
	if fmt.Sprint(killed) != fmt.Sprint([]int{pid}) {
		t.Errorf("killed %v, want %d after %d looks at it executing", killed, pid, looks)
	}
}
