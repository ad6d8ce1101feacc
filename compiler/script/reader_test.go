package script

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/internal/testenv"
)

// write is one write(2) of a step to its stdout (0) or stderr (1).
type write struct {
	stream int
	text   string
}

// runReader runs the script's reader of a step's output alone (sourced
// from the runtime, the command prefixed by wrap), plays writes to its two
// streams with a pause after each, and checks that each stream's lines
// come out whole and in order, every byte kept (but a CR before the
// newline).
func runReader(t *testing.T, wrap []string, writes []write) {
	t.Helper()
	dir := t.TempDir()
	rt := filepath.Join(dir, "runtime.bash")
	if err := os.WriteFile(rt, []byte(runtime), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "masks"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"out", "err"} {
		if err := syscall.Mkfifo(filepath.Join(dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	harness := `source "$1"; d=$2
nf_run_dir=$d nf_tmp=$d nf_format=simple nf_masks=()
nf_reader job step "$d/tail" "$d/out" "$d/err"`
	argv := append(wrap, "bash", "-c", harness, "bash", rt, dir)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var streams [2]*os.File
	for i, f := range []string{"out", "err"} {
		w, err := os.OpenFile(filepath.Join(dir, f), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = w
	}
	for _, w := range writes {
		if _, err := streams[w.stream].WriteString(w.text); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	streams[0].Close()
	streams[1].Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("reader: %v\n%s", err, stderr.String())
	}
	var want [2][]string
	var all [2]string
	for _, w := range writes {
		all[w.stream] += w.text
	}
	for i, text := range all {
		for _, l := range strings.SplitAfter(text, "\n") {
			if l != "" {
				// A line's CR (CRLF) is dropped, as nixflow run drops it.
				want[i] = append(want[i], "[job/step] "+strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r"))
			}
		}
	}
	// The two streams interleave as the reader takes them: compare each
	// stream's lines in order (stderr's lines start with e, € or E).
	var got [2][]string
	for _, l := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		s := 0
		if t := strings.TrimPrefix(l, "[job/step] "); strings.HasPrefix(t, "e") || strings.HasPrefix(t, "€") || strings.HasPrefix(t, "E") {
			s = 1
		}
		got[s] = append(got[s], l)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		out := stdout.String()
		if len(out) > 4000 {
			out = out[:4000] + "..."
		}
		t.Errorf("lines written (-want +got):\n%s\nwhole output:\n%s", diff, out)
	}
}

// TestReaderSlowReads: the reader writes every line whole, every byte
// kept, when its reads are slow, here each read(2) held 20 ms by strace,
// longer than the reader's shorter waits. bash's `read -t` consumes a
// newline and then reports the timeout when its time runs out between
// the two: the reader joined two lines so (once in CI, on a loaded
// machine), and could cut a multibyte character.
func TestReaderSlowReads(t *testing.T) {
	strace := testenv.NeedCommand(t, "strace", "strace")
	runReader(t, []string{strace, "-o", "/dev/null", "-e", "trace=read", "-e", "inject=read:delay_exit=20000"}, []write{
		{0, "o1\n"}, {0, "\n"}, {1, "e1\n"}, {0, "o2 é€\n"}, {0, "o"}, {0, "3\no4\n"},
		{1, "e2\ne3\n"}, {0, "\n"}, {1, "€€\n"}, {0, "o5"},
	})
}

// TestReaderLongLines: lines longer than what the reader takes at once,
// split across writes, with CRs and short lines around them, come out
// whole (the reader cuts long lines from its buffer another way).
func TestReaderLongLines(t *testing.T) {
	long := strings.Repeat("x", 40000)
	runReader(t, nil, []write{
		{0, "o" + long}, {1, "e1\n"}, {0, long + "\r\nshort\n"}, {0, "\r\n"},
		{1, "E" + long + "\n"}, {0, "o" + long + "\n" + "o" + long},
	})
}
