package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestColor checks that the output is coloured on a terminal, and only
// there: never in a pipe, never with NO_COLOR set, never for TERM=dumb.
func TestColor(t *testing.T) {
	dir := t.TempDir()
	wf := filepath.Join(dir, "ci.json")
	if err := os.WriteFile(wf, []byte(`{"version": 1, "name": "c", "jobs": {"a": {"executor": {"type": "local", "copyRepo": false}, "steps": [{"bash": "echo hi"}]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, env []string, toTerminal bool) string {
		t.Setenv("XDG_STATE_HOME", filepath.Join(t.TempDir(), "state"))
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		if !toTerminal {
			var out bytes.Buffer
			Main([]string{"run", wf}, bytes.NewReader(nil), &out, io.Discard)
			return out.String()
		}
		master, slave := openPTY(t)
		defer master.Close()
		got := make(chan []byte)
		go func() {
			b, _ := io.ReadAll(master) // ends with EIO once the slave is closed
			got <- b
		}()
		Main([]string{"run", wf}, bytes.NewReader(nil), slave, io.Discard)
		slave.Close()
		// The live status line erases itself with ESC [ K, with or
		// without colours: that is not colour.
		return strings.ReplaceAll(string(<-got), "\x1b[K", "")
	}
	const esc = "\x1b["
	if out := run(t, []string{"NO_COLOR=", "TERM=xterm"}, true); !strings.Contains(out, esc) {
		t.Errorf("no colour on a terminal:\n%q", out)
	} else if !strings.Contains(out, "▶ 0/1 done · 1 running: a 0s · 0 queued") {
		t.Errorf("no status line on a terminal:\n%q", out)
	}
	if out := run(t, []string{"NO_COLOR=1", "TERM=xterm"}, true); strings.Contains(out, esc) {
		t.Errorf("colour with NO_COLOR set:\n%q", out)
	}
	if out := run(t, []string{"NO_COLOR=", "TERM=dumb"}, true); strings.Contains(out, esc) {
		t.Errorf("colour with TERM=dumb:\n%q", out)
	}
	if out := run(t, []string{"NO_COLOR=", "TERM=xterm"}, false); strings.Contains(out, esc) || strings.Contains(out, "▶") {
		t.Errorf("colour or a status line in a pipe:\n%q", out)
	}
}
