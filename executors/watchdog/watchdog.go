// Package watchdog cleans up after a nixflow that is killed with SIGKILL,
// or crashes, and so cannot clean up itself: an executor starts a guard,
// a second nixflow process (Main), in a process group of its own and deaf
// to every signal it can ignore, whose standard input is a pipe that only
// the executor holds. The executor may write notes on the pipe as it
// works (a container being created, say). When the work is over, Stop
// kills the guard. When the pipe reaches end of file first, nixflow is
// gone: the guard runs its kind's Sweeper with its arguments and the
// notes, then ends.
//
// Where it can (Linux, with /bin/sh), the guard waits as a small shell
// (a sentinel), not as nixflow: the notes go to a file in memory (memfd:
// a full disk loses none) that only the executor and the sentinel hold,
// and the sentinel replaces itself with nixflow (Main) only once the
// pipe ends, to sweep. A run that ends well so pays for starting a
// shell, not nixflow (about 3 ms against 28 ms of CPU on a slow hour of
// the test machines); nixflow's start-up is paid only when there is
// something to sweep.
package watchdog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// Arg, as a program's first argument, makes it Main: nixflow's main
// checks for it before anything else.
const Arg = "__watchdog"

// A Sweeper stops and removes what a gone nixflow left: args are those
// its guard was started with, notes the lines the executor wrote.
type Sweeper func(args, notes []string)

var (
	mu       sync.Mutex
	argv0    string
	sweepers = map[string]Sweeper{}
)

// Register makes sweep the Sweeper of guards of kind. Executors register
// in their package's init.
func Register(kind string, sweep Sweeper) {
	mu.Lock()
	defer mu.Unlock()
	if _, ok := sweepers[kind]; ok {
		panic("watchdog: two sweepers of kind " + kind)
	}
	sweepers[kind] = sweep
}

// Enable lets the executors of this process start guards: this very
// program, run with Arg, argv0 as its os.Args[0]. Only a program whose
// main runs Main for Arg may call it (tests that call the CLI in their
// own process do not); an empty argv0 disables guards again.
func Enable(program string) {
	mu.Lock()
	defer mu.Unlock()
	argv0 = program
}

// Guard is an executor's side of its watchdog.
type Guard struct {
	cmd *exec.Cmd // set by Start, then never changed

	// mu guards pipe and notes: nil once the guard was stopped or
	// abandoned. The notes go to the sentinel's file, or on the pipe.
	mu    sync.Mutex
	pipe  *os.File
	notes *os.File
	once  sync.Once
}

// Start starts a guard of kind with args, which name what to sweep (no
// secret: they show in ps), and env as its environment (nil: nixflow's).
// It returns nil, and no error, when guards are not enabled in this
// process; a guard that cannot start is an error, and the work runs
// unguarded.
func Start(kind string, env []string, args ...string) (*Guard, error) {
	mu.Lock()
	program := argv0
	_, known := sweepers[kind]
	mu.Unlock()
	if program == "" {
		return nil, nil
	}
	if !known {
		return nil, fmt.Errorf("watchdog: no sweeper of kind %q", kind)
	}
	argv := append([]string{Arg, kind}, args...)
	if useSentinel {
		if notes, exe := sentinelFiles(); notes != nil {
			// The sentinel (see the package documentation): fd 3 the
			// notes, fd 4 this program, run from there even if its file
			// was replaced or removed since.
			cmd := guardCommand(sentinelShell, append([]string{"sh", "-c", sentinel, program}, argv...), sentinelEnv(env))
			cmd.ExtraFiles = []*os.File{notes, exe}
			g, err := start(cmd, notes)
			exe.Close()
			if err == nil {
				return g, nil
			}
			// A shell that cannot start (a sandbox refusing it, say):
			// the guard waits as nixflow.
			notes.Close()
		}
	}
	path, err := executable()
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	return start(guardCommand(path, append([]string{program}, argv...), env), nil)
}

// guardCommand is the command of a guard: path run with args and env.
func guardCommand(path string, args, env []string) *exec.Cmd {
	return &exec.Cmd{
		Path: path,
		Args: args,
		Env:  env,
		Dir:  "/",
		// nixflow's: a sweeper says there what it did and what failed,
		// where the user of the killed run looks.
		Stderr: os.Stderr,
		// A group of its own: a terminal's Ctrl-C, or a kill of
		// nixflow's group, does not reach it.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
}

// start starts the guard cmd, its standard input a pipe that only the
// Guard holds; notes, if not nil, is where the Guard writes its notes,
// else on the pipe.
func start(cmd *exec.Cmd, notes *os.File) (*Guard, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	cmd.Stdin = r
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	g := &Guard{cmd: cmd, pipe: w, notes: w}
	if notes != nil {
		g.notes = notes
	}
	return g, nil
}

// useSentinel: guards wait as a sentinel where they can (tests turn it
// off to try the other way); sentinelShell runs it (tests try bash,
// which is /bin/sh on some systems).
var (
	useSentinel   = true
	sentinelShell = "/bin/sh"
)

// sentinel is the sentinel's shell program: deaf to every signal it can
// ignore (as Main is: the standard signals of Linux but SIGKILL, SIGSTOP
// and SIGCHLD, and the real-time signals 34-64, where the libc lets a
// program ignore them), it waits for the end of its input, then becomes
// nixflow, the notes its input, read from their start. Its $0 is
// nixflow's os.Args[0], its arguments Main's.
var sentinel = "trap '' " + ignoredSignals() + "\nread -r x\nexec " + sentinelExe + ` "$@" </proc/self/fd/3 3<&-`

// ignoredSignals lists the numbers of the signals the sentinel ignores.
func ignoredSignals() string {
	var b strings.Builder
	for sig := 1; sig <= 64; sig++ {
		switch sig {
		case 9, 17, 19, 32, 33: // SIGKILL, SIGCHLD, SIGSTOP; the libc's own
			continue
		}
		fmt.Fprintf(&b, "%d ", sig)
	}
	return strings.TrimSpace(b.String())
}

// sentinelEnv is env (nil: nixflow's) without what would change how the
// sentinel's shell runs, where /bin/sh is bash: TMOUT would end its read
// (and so sweep a run still going), SHELLOPTS=xtrace trace it on
// nixflow's standard error, BASH_ENV, ENV and exported functions run
// code of the user's. The sweeper needs none of them.
func sentinelEnv(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	kept := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "TMOUT", name == "SHELLOPTS", name == "BASHOPTS", name == "BASH_ENV", name == "ENV",
			strings.HasPrefix(name, "BASH_FUNC_"):
			continue
		}
		kept = append(kept, kv)
	}
	return kept
}

// sentinelExe is how the sentinel runs nixflow: the file that fd 4
// holds open. Main marks it close-on-exec, so that the sweeper's
// commands do not inherit it.
const sentinelExe = "/proc/self/fd/4"

// Note tells the guard one line (no newline in it) for its sweeper. A
// nil guard, or one stopped, ignores it.
func (g *Guard) Note(line string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.notes != nil {
		g.notes.WriteString(line + "\n")
	}
}

// Stop ends the guard, once what it guards is over: it kills it (the
// guard ignores every other signal), then closes the pipe. Telling it on
// the pipe would make Stop wait for the guard to start up, when a short
// run ends before it did. The kill comes first, without the lock: a Note
// that waits for room in the pipe (a guard stopped with SIGSTOP) ends
// with it. A nil guard is a no-op.
func (g *Guard) Stop() {
	if g == nil {
		return
	}
	g.once.Do(func() {
		g.cmd.Process.Kill()
		g.cmd.Wait()
		g.closePipe()
	})
}

func (g *Guard) closePipe() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.notes != g.pipe {
		g.notes.Close()
	}
	g.pipe.Close()
	g.pipe, g.notes = nil, nil
}

// Done reports whether the guard was stopped or abandoned (for tests).
func (g *Guard) Done() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pipe == nil
}

// Abandon closes the guard's pipe without a word, as nixflow's death
// does, and waits for the guard to sweep and end (for tests).
func (g *Guard) Abandon() error {
	err := errors.New("watchdog: the guard was stopped")
	g.once.Do(func() {
		g.closePipe()
		err = g.cmd.Wait()
	})
	return err
}

// Main is the guard's program: args are its kind and the kind's
// arguments. It reads notes from stdin until end of file, then sweeps.
// It returns its exit code.
func Main(args []string, stdin io.Reader) int {
	if len(args) < 1 {
		os.Stderr.WriteString("nixflow: the watchdog is started by nixflow itself\n")
		return 2
	}
	mu.Lock()
	sweep := sweepers[args[0]]
	mu.Unlock()
	if sweep == nil {
		fmt.Fprintf(os.Stderr, "nixflow: no watchdog of kind %q (known: %s)\n", args[0], strings.Join(kinds(), ", "))
		return 2
	}
	// It outlives what stops nixflow, and ends with its input: only
	// SIGKILL and SIGSTOP reach it. SIGCHLD is handled again (Reset
	// would leave it ignored): ignored, it would have the kernel reap
	// the sweeper's children before it could wait for them.
	signal.Ignore()
	signal.Notify(make(chan os.Signal, 1), syscall.SIGCHLD)
	if len(os.Args) > 0 && os.Args[0] == sentinelExe {
		syscall.CloseOnExec(4)
	}
	var notes []string
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		notes = append(notes, sc.Text())
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		// A note too long to read: sweep with what was read.
		io.Copy(io.Discard, stdin)
	}
	sweep(args[1:], notes)
	return 0
}

func kinds() []string {
	var k []string
	for kind := range sweepers {
		k = append(k, kind)
	}
	sort.Strings(k)
	return k
}
