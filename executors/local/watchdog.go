package local

import (
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// A nixflow killed with SIGKILL, or crashing, cannot stop its steps. So
// before its first step starts, a local executor starts a watchdog: a
// second nixflow process (WatchdogMain), in a process group of its own
// and deaf to every signal it can ignore, whose standard input is a pipe
// that only the executor holds. Close kills the watchdog: the steps are
// over.
// When the pipe reaches end of file first, nixflow is gone: the watchdog
// kills the executor's steps, found by the cookies in their
// environments, which share the executor's token, and by their cgroups,
// then ends. The scan reads /proc: Linux only (the watchdog is started
// there only).
//
// A watchdog costs one process start (a few ms, most of them in parallel
// with the run) for each local executor of a run that runs a step, and
// nothing per step.

// WatchdogArg, as a program's first argument, makes it WatchdogMain:
// nixflow's main checks for it before anything else.
const WatchdogArg = "__watchdog"

var (
	watchdogMu   sync.Mutex
	watchdogArg0 string
)

// EnableWatchdog makes the local executors of this process guard their
// steps with a watchdog, this program run with WatchdogArg, argv0 as its
// os.Args[0]. Only a program whose main runs WatchdogMain for WatchdogArg
// may call it: tests that call the CLI in their own process do not.
func EnableWatchdog(argv0 string) {
	watchdogMu.Lock()
	defer watchdogMu.Unlock()
	watchdogArg0 = argv0
}

// watchdogCommand returns the command that starts a watchdog, nil if
// there is none to start.
func watchdogCommand(args ...string) *exec.Cmd {
	watchdogMu.Lock()
	argv0 := watchdogArg0
	watchdogMu.Unlock()
	if argv0 == "" || !watchdogSupported {
		return nil
	}
	return &exec.Cmd{
		// This very program, even if its file was replaced or removed
		// since it started (os.Executable names the path, whatever is
		// there now).
		Path: "/proc/self/exe",
		Args: append([]string{argv0, WatchdogArg}, args...),
		Dir:  "/",
		// A group of its own: a terminal's Ctrl-C, or a kill of
		// nixflow's group, does not reach it.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
}

// watchdog is an executor's side of its watchdog.
type watchdog struct {
	// token starts the cookie of every step of the executor.
	token string
	log   hclog.Logger

	once sync.Once
	cmd  *exec.Cmd
	pipe *os.File
}

func newWatchdog(log hclog.Logger) *watchdog {
	return &watchdog{token: rand.Text(), log: log}
}

// cookie returns a new cookie for a step (see cookieVar); nil d, one
// outside an executor.
func (d *watchdog) cookie() string {
	if d == nil {
		return newCookie()
	}
	return d.token + "." + newCookie()
}

// start starts the watchdog, once, if this process has one
// (EnableWatchdog) and it can run here; cgroups are where the steps'
// cgroups are made, if they are. A watchdog that cannot start is
// logged: the steps run unguarded.
func (d *watchdog) start(cgroups *cgroupBase) {
	if d == nil {
		return
	}
	d.once.Do(func() {
		cmd := watchdogCommand(d.token, cgroups.prefixOf(d.token))
		if cmd == nil {
			return
		}
		r, w, err := os.Pipe()
		if err == nil {
			cmd.Stdin = r
			err = cmd.Start()
			r.Close()
		}
		if err != nil {
			if w != nil {
				w.Close()
			}
			if d.log != nil {
				d.log.Warn("no watchdog: the steps will not be stopped if nixflow is killed", "error", err)
			}
			return
		}
		d.cmd, d.pipe = cmd, w
	})
}

// stop ends the watchdog, once the executor's steps are over: it kills
// it (the watchdog ignores every other signal), then closes the pipe.
// Telling it on the pipe would make Close wait for the watchdog to start
// up, when a short run ends before it did.
func (d *watchdog) stop() {
	if d == nil {
		return
	}
	d.once.Do(func() {}) // no start from now on
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Kill()
	d.cmd.Wait()
	d.pipe.Close()
	d.cmd = nil
}

// WatchdogMain is the watchdog's program; args are the executor's token
// and the prefix of its steps' cgroup directories (empty: none). It
// waits for end of file on stdin, then kills the steps. It returns its
// exit code.
func WatchdogMain(args []string, stdin io.Reader) int {
	if len(args) != 2 || args[0] == "" {
		os.Stderr.WriteString("nixflow: the watchdog is started by nixflow itself\n")
		return 2
	}
	// It outlives what stops nixflow, and ends with its input: only
	// SIGKILL and SIGSTOP reach it.
	signal.Ignore()
	io.Copy(io.Discard, stdin)
	sweepSteps(args[0], args[1])
	return 0
}
