package watchdog

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test sweeper writes its arguments and notes to the file its first
// argument names, and what a command it runs inherits besides its
// standard files: "fd 3", "fd 4".
func init() {
	Register("test", func(args, notes []string) {
		inherited, _ := exec.Command("sh", "-c", `for fd in 3 4; do [ -e /proc/$$/fd/$fd ] && echo "fd $fd"; done; true`).Output()
		os.WriteFile(args[0], []byte(strings.Join(append(args[1:], notes...), "\n")), 0o600)
		os.WriteFile(args[0]+".inherited", inherited, 0o600)
		os.WriteFile(args[0]+".env", []byte(os.Getenv("NIXFLOW_TEST_GUARD")), 0o600)
	})
}

// ways runs test with guards waiting as a sentinel, where they can, and
// as nixflow.
func ways(t *testing.T, test func(t *testing.T)) {
	for _, sentinel := range []bool{true, false} {
		name := map[bool]string{true: "sentinel", false: "nixflow"}[sentinel]
		t.Run(name, func(t *testing.T) {
			old := useSentinel
			useSentinel = sentinel
			t.Cleanup(func() { useSentinel = old })
			test(t)
		})
	}
}

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == Arg {
		os.Exit(Main(os.Args[2:], os.Stdin))
	}
	os.Exit(m.Run())
}

func enable(t *testing.T) {
	Enable("nixflow-test")
	t.Cleanup(func() { Enable("") })
}

// TestSweepOnEOF: when the guard's pipe ends without Stop (nixflow
// killed), the sweeper runs with the guard's arguments and every note.
func TestSweepOnEOF(t *testing.T) { ways(t, testSweepOnEOF) }

func testSweepOnEOF(t *testing.T) {
	enable(t)
	out := filepath.Join(t.TempDir(), "swept")
	g, err := Start("test", append(os.Environ(), "NIXFLOW_TEST_GUARD=the guard's"), out, "arg with spaces")
	if err != nil || g == nil {
		t.Fatalf("Start = %v, %v", g, err)
	}
	g.Note("made a")
	g.Note("made b")
	if err := g.Abandon(); err != nil {
		t.Fatalf("the guard: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "arg with spaces\nmade a\nmade b"; string(got) != want {
		t.Errorf("the sweeper got %q, want %q", got, want)
	}
	if inherited, _ := os.ReadFile(out + ".inherited"); len(inherited) > 0 {
		t.Errorf("the sweeper's commands inherited the guard's files: %q", inherited)
	}
	if env, _ := os.ReadFile(out + ".env"); string(env) != "the guard's" {
		t.Errorf("the sweeper's environment has NIXFLOW_TEST_GUARD=%q, want the guard's", env)
	}
	g.Note("after") // no guard: ignored
	g.Stop()
}

// TestStopDoesNotSweep: a guard stopped (the work is over) sweeps
// nothing.
func TestStopDoesNotSweep(t *testing.T) { ways(t, testStopDoesNotSweep) }

func testStopDoesNotSweep(t *testing.T) {
	enable(t)
	out := filepath.Join(t.TempDir(), "swept")
	g, err := Start("test", nil, out)
	if err != nil {
		t.Fatal(err)
	}
	g.Note("made a")
	g.Stop()
	if !g.Done() {
		t.Error("Done after Stop = false")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a stopped guard swept: %v", err)
	}
	g.Stop() // twice: no-op
}

func TestNotEnabled(t *testing.T) {
	g, err := Start("test", nil, "x")
	if g != nil || err != nil {
		t.Errorf("Start without Enable = %v, %v; want nil, nil", g, err)
	}
	g.Note("x") // a nil guard ignores notes and stops
	g.Stop()
}

func TestUnknownKind(t *testing.T) {
	enable(t)
	if _, err := Start("nope", nil); err == nil || !strings.Contains(err.Error(), `no sweeper of kind "nope"`) {
		t.Errorf("Start of an unknown kind: %v", err)
	}
	if code := Main([]string{"nope"}, strings.NewReader("")); code != 2 {
		t.Errorf("Main of an unknown kind = %d, want 2", code)
	}
	if code := Main(nil, strings.NewReader("")); code != 2 {
		t.Errorf("Main without a kind = %d, want 2", code)
	}
}

// TestStopWhileNoteBlocks: a guard that reads nothing (stopped with
// SIGSTOP) fills its pipe, and a Note waits for room (a guard waiting as
// nixflow; a sentinel's notes go to a file); Stop still ends the guard,
// and the Note with it.
func TestStopWhileNoteBlocks(t *testing.T) { ways(t, testStopWhileNoteBlocks) }

func testStopWhileNoteBlocks(t *testing.T) {
	enable(t)
	g, err := Start("test", nil, filepath.Join(t.TempDir(), "swept"))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	notes := make(chan struct{})
	go func() {
		defer close(notes)
		line := strings.Repeat("x", 1000)
		for range 1000 { // 1 MB: more than a pipe holds
			g.Note(line)
		}
	}()
	time.Sleep(100 * time.Millisecond) // the Notes fill the pipe
	stopped := make(chan struct{})
	go func() { g.Stop(); close(stopped) }()
	for _, c := range []chan struct{}{stopped, notes} {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatal("Stop, or a Note, still waits 10 s after Stop")
		}
	}
}
