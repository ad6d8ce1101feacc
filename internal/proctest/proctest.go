// Package proctest runs the bash code that scans /proc for a step's
// processes (the OCI reap, the SSH runner's and the compiled script's
// cookie scans) against a /proc whose answers a test decides read by
// read, with no clock involved.
package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The harness defines, before the code under test:
//   - stat STATE ENV_END [THREADS]: what the current read of the
//     process's stat sees (fields 3, 51 and 20; THREADS 1 if not given);
//   - environ TEXT: the process's environment from now on (printf's
//     escapes: \0 ends a variable);
//   - serve, the test's code: run before each read of the stat with the
//     number of reads before it as $1, it calls stat; nf_test_file holds
//     the text of the file read, which is its path under the fake /proc
//     (4242/stat; a test that makes more must write theirs so), and
//     nf_test_root the fake /proc;
//   - read, which answers the reads of the stat (into s, st or st2) with
//     serve, and leaves the others to the builtin; SECONDS stays 0, so a
//     scan's time never runs out;
//   - kill, which records its arguments in $nf_test_killed and empties
//     the environment, as a killed process's memory goes; sleep and
//     nf_sleep_ms, which do nothing.
const (
	harnessHead = `nf_test_reads=0 nf_test_z16=$(printf '0 %.0s' {4..19}) nf_test_z30=$(printf '0 %.0s' {21..50})
stat() { line="4242 (sleep) $1 $nf_test_z16${3:-1} $nf_test_z30$2 0"; }
environ() { printf "$1" > "$nf_test_root/4242/environ"; }
`
	harnessTail = `read() {
  local v=${!#}
  if [ "$1" = -r ] && { [ "$v" = s ] || [ "$v" = st ] || [ "$v" = st2 ]; }; then
    SECONDS=0
    builtin read -r -d '' nf_test_file
    serve "$nf_test_reads"; nf_test_reads=$((nf_test_reads+1))
    printf -v "$v" '%s' "$line"
    return 0
  fi
  builtin read "$@"
}
kill() { printf '%s\n' "$*" >> "$nf_test_killed"; : 2>/dev/null > "$nf_test_root/4242/environ"; return 0; }
sleep() { :; }
nf_sleep_ms() { :; }
`
)

// MainEnded, as Run's environ, makes 4242 a process whose main thread has
// ended, and that lives on in thread 4243, with env as its environment:
// its environment cannot be opened through its pid (a socket stands for
// ESRCH or EACCES), as since Linux 6.15. serve sees which stat is read in
// nf_test_file, and answers for 4242 as the kernel does: stat Z 0 N, N
// threads.
func MainEnded(env string) string { return mainEnded + env }

// MainEndedEmpty is MainEnded with the environment of 4242 reading empty,
// as before Linux 6.15.
func MainEndedEmpty(env string) string { return mainEndedEmpty + env }

const (
	mainEnded      = "\x00main-ended\x00"
	mainEndedEmpty = "\x00main-ended-empty\x00"
)

// unopenable makes a file at path that fails to open: a socket.
func unopenable(t testing.TB, path string) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatalf("a socket at %s: %v", path, err)
	}
}

// Run runs bash: defs, then the harness (which overrides what defs
// define of it), then code, with args; /proc/ in defs and code names the
// fake /proc: one process, 4242, with environ as its environment (or see
// MainEnded) and serve (see above) deciding what each read of its stat
// sees. The last pid allocated is 4242 (for a scan of the pids after the
// step's, 4241). It returns the number of reads of the stat and the kill
// calls, one a line.
func Run(t testing.TB, defs, code string, args []string, environ, serve string) (int, string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"self", "sys/kernel", "4242"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"4242/stat": "4242/stat", "4242/environ": environ, "sys/kernel/ns_last_pid": "4242\n"}
	env, unopened := strings.CutPrefix(environ, mainEnded)
	env, empty := strings.CutPrefix(env, mainEndedEmpty)
	if unopened || empty {
		delete(files, "4242/environ")
		if unopened {
			unopenable(t, filepath.Join(root, "4242/environ"))
		} else {
			files["4242/environ"] = ""
		}
		if err := os.MkdirAll(filepath.Join(root, "4242/task/4243"), 0o755); err != nil {
			t.Fatal(err)
		}
		files["4242/task/4243/stat"] = "4242/task/4243/stat"
		files["4242/task/4243/environ"] = env
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	killed := filepath.Join(t.TempDir(), "killed")
	script := strings.ReplaceAll(defs, "/proc/", root+"/") + "\n" +
		harnessHead + "serve() {\n" + serve + "\n}\n" + harnessTail +
		strings.ReplaceAll(code, "/proc/", root+"/") + "\necho \"$nf_test_reads\"\n"
	file := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	x := exec.Command("bash", append([]string{"--noprofile", "--norc", file}, args...)...)
	x.Env = append(os.Environ(), "nf_test_root="+root, "nf_test_killed="+killed)
	x.Stderr = os.Stderr
	out, err := x.Output()
	if err != nil {
		t.Fatalf("the scan: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("the scan printed %q", out)
	}
	calls, _ := os.ReadFile(killed)
	return n, string(calls)
}

// CheckMainEnded checks a scan against a process whose main thread has
// ended, its environment env, in each way the kernel shows it (MainEnded,
// MainEndedEmpty): with 5 threads, scan must make the kill call kill;
// with 1 (a plain zombie), none. Killed, the process keeps its threads
// for 20 more reads of its stat: if waits is set, the scan waits for
// what it killed to end, and must not stop before they are gone. scan
// runs the scan (Run with its code) with environ and serve, and returns
// the kill calls.
func CheckMainEnded(t *testing.T, env, kill string, waits bool, scan func(environ, serve string) string) {
	t.Helper()
	for name, environ := range map[string]string{"unopened": MainEnded(env), "empty": MainEndedEmpty(env)} {
		for threads, want := range map[int]string{5: kill, 1: ""} {
			// after holds the thread counts the reads after the kill saw.
			after := filepath.Join(t.TempDir(), "after")
			calls := scan(environ, fmt.Sprintf(`
if [ "$nf_test_file" = 4242/stat ] && [ -e "$nf_test_killed" ]; then
  n=$( (cat %[2]q 2>/dev/null || :) | wc -l)
  if ((n < 20)); then stat Z 0 %[1]d; else stat Z 0; fi
  echo "${line#* * * $nf_test_z16}" | cut -d' ' -f1 >> %[2]q
elif [ "$nf_test_file" = 4242/stat ]; then stat Z 0 %[1]d
elif [ -e "$nf_test_killed" ]; then stat Z 0
else stat S 140735201812461
fi`, threads, after))
			if calls != want {
				t.Errorf("%s, %d threads: kill calls %q, want %q", name, threads, calls, want)
			}
			if want == "" || !waits {
				continue
			}
			seen, _ := os.ReadFile(after)
			if lines := strings.Fields(string(seen)); len(lines) == 0 || lines[len(lines)-1] != "1" {
				t.Errorf("%s, %d threads: the scan stopped looking at the killed process while it had threads left (thread counts seen after the kill: %q)", name, threads, lines)
			}
		}
	}
}
