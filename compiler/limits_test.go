package compiler

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// hugeInputs are inputs that once took tens of seconds and gigabytes to
// validate (edit distances on 30,000-character names, every error's
// position found by scanning the file from its start).
func hugeInputs() map[string]string {
	long := func(c string) string { return strings.Repeat(c, 30000) }
	inputs := map[string]string{}
	inputs["long names"] = fmt.Sprintf(`{"version": 1, "name": "x", "jobs": {%q: {"needs": [%q], "steps": [{"bash": "true"}]}}}`, long("a"), long("b"))

	var b strings.Builder
	b.WriteString(`{"version": 1, "name": "x", "jobs": {`)
	for i := range 3000 {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `"job-%05d": {"needs": ["missing-%05d"], "steps": [{"bash": "true"}]}`, i, i)
	}
	b.WriteString("}}")
	inputs["3000 missing needs"] = b.String()

	b.Reset()
	b.WriteString(`{"version": 1, "name": "x", "jobs": {"a": {"steps": [{"bash": "true"}]`)
	for i := range 20000 {
		fmt.Fprintf(&b, `, "unknown%05d": 1`, i)
	}
	b.WriteString("}}}")
	inputs["20000 unknown fields"] = b.String()
	// The same on many lines, and on one line of 10 MB.
	inputs["20000 unknown fields, lines"] = strings.ReplaceAll(b.String(), ", ", ",\n")
	inputs["10 MB line"] = strings.Replace(b.String(), `"version"`, `"pad": "`+strings.Repeat("p", 9<<20)+`", "version"`, 1)
	return inputs
}

// TestHugeInputs is a guard, not a measurement: each input validates in
// well under a second (BenchmarkHugeInputs); the test only fails when
// one takes ten times that, as they all did before (20 to 50 s), or
// allocates gigabytes, as they did too.
func TestHugeInputs(t *testing.T) {
	// The race detector's slowdown defeats the time guard, not the
	// memory one.
	limit := 10 * time.Second
	if raceEnabled {
		limit = time.Hour
	}
	for name, in := range hugeInputs() {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			done := make(chan error, 1)
			go func() {
				_, err := Compile("graph.json", []byte(in))
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("no error")
				}
			case <-time.After(limit):
				t.Fatalf("validation did not finish in %v", limit)
			}
			// Memory, too: each allocates 0.1 to 60 MB in all today, and
			// gigabytes before.
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > 256<<20 {
				t.Errorf("validation allocated %d MB, want under 256 MB", n>>20)
			}
		})
	}
}

func BenchmarkHugeInputs(b *testing.B) {
	for name, in := range hugeInputs() {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				Compile("graph.json", []byte(in))
			}
		})
	}
}

// TestPositions: line and column (in runes) come out the same whether
// offsets are asked forward, backward or again, across multi-byte text.
func TestPositions(t *testing.T) {
	data := []byte("ab\nçd€f\n\nxyz")
	want := func(off int) [2]int {
		line, col := 1, 1
		for _, r := range string(data[:off]) {
			if r == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		return [2]int{line, col}
	}
	offsets := []int{0, 1, 3, 5, 8, 11, 12, 13, 14, 15, 5, 0, 14, 3, 3, 9}
	p := newPositions(data)
	for _, off := range offsets {
		line, col := p.at(off)
		if got := [2]int{line, col}; got != want(off) {
			t.Errorf("at(%d) = %v, want %v", off, got, want(off))
		}
	}
}

// TestSizeLimits: what no executor could start or save is refused when
// the graph is compiled, naming the limit: a step's bash of 128 KiB or
// more (one argument, bash -c BODY), an artifact name over 200 bytes (a
// directory's name). Just under both is fine.
func TestSizeLimits(t *testing.T) {
	graph := func(bash, artifact string) string {
		return fmt.Sprintf(`{"version": 1, "name": "x", "jobs": {"a": {"steps": [{"bash": %q}], "outputs": {%q: "out"}}}}`, bash, artifact)
	}
	if _, err := Compile("g.json", []byte(graph("true #"+strings.Repeat("x", maxArgStrlen-8), strings.Repeat("a", MaxArtifactName)))); err != nil {
		t.Errorf("a graph just under the limits: %v", err)
	}
	_, err := Compile("g.json", []byte(graph("true #"+strings.Repeat("x", maxArgStrlen), strings.Repeat("a", MaxArtifactName+1))))
	if err == nil {
		t.Fatal("a graph over the limits compiled")
	}
	for _, want := range []string{
		"jobs.a.steps[0].bash: 131078 bytes long, more than the 131071 the kernel takes in one argument",
		"artifact name too long: 201 characters, at most 200",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nlacks %q", err, want)
		}
	}
}
