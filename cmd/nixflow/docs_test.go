package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestGettingStarted runs the commands of docs/getting-started.md as
// written, in a fresh directory that is not a git repository: the console
// session of "A first pipeline" (its output lines checked, "..." skipping
// lines), its ci.nix (validated), the errors the page shows for that
// ci.nix with the fields they name misspelt (every line, positions
// included), and the commands the "Useful next" paragraph suggests. The script is made from the page, then run like the
// scripts in testdata/script.
func TestGettingStarted(t *testing.T) {
	page, err := os.ReadFile("../../docs/getting-started.md")
	if err != nil {
		t.Fatal(err)
	}
	script, err := gettingStartedScript(string(page))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "getting_started.txtar"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, scriptParams(dir))
}

var (
	consoleBlock = regexp.MustCompile("(?s)## 2\\. A first pipeline.*?```console\n(.*?)```")
	nixBlock     = regexp.MustCompile("(?s)## 2\\. A first pipeline.*?```nix\n(.*?)```")
	usefulNext   = regexp.MustCompile("(?s)Useful next:(.*?)\n\n")
	mistakeBlock = regexp.MustCompile("(?s)A mistake in `ci.nix`.*?```text\n(.*?)```")
	typo         = regexp.MustCompile(`unknown field "(\w+)" \(did you mean "(\w+)"\?\)`)
	inlineCmd    = regexp.MustCompile("`(nixflow [^`]+)`")
	runID        = regexp.MustCompile(`\d{8}-\d{6}\.\d{3}-[0-9a-f]{6}`)
	duration     = regexp.MustCompile(`\b\d+(\.\d+)?(ms|s|m\d+s)\b`)
)

func gettingStartedScript(page string) (string, error) {
	var b strings.Builder
	b.WriteString("# Generated from docs/getting-started.md by TestGettingStarted.\n")
	b.WriteString("[!nix] skip 'nix is not installed'\nmkdir project\ncd project\n")
	m := consoleBlock.FindStringSubmatch(page)
	if m == nil {
		return "", os.ErrNotExist
	}
	var want []string
	flush := func() {
		for _, w := range want {
			b.WriteString("stdout '^" + strings.ReplaceAll(w, "'", "''") + "$'\n")
		}
		want = nil
	}
	for _, line := range strings.Split(strings.TrimRight(m[1], "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "$ "):
			flush()
			b.WriteString("exec " + strings.TrimPrefix(line, "$ ") + "\n")
		case line == "...":
		default:
			// Run ids and durations differ from run to run.
			line = runID.ReplaceAllString(line, "\x00")
			line = duration.ReplaceAllString(line, "\x00")
			want = append(want, strings.ReplaceAll(regexp.QuoteMeta(line), "\x00", `\S+`))
		}
	}
	flush()
	example := nixBlock.FindStringSubmatch(page)
	// The page's mistakes are that ci.nix with the fields it names
	// misspelt: validating it prints the page's lines, positions included.
	var mistaken string
	if example != nil {
		b.WriteString("cp $WORK/example.nix ci.nix\nexec nixflow validate\n")
		if mb := mistakeBlock.FindStringSubmatch(page); mb != nil {
			mistaken = example[1]
			b.WriteString("cp $WORK/mistaken.nix ci.nix\n! exec nixflow validate\n")
			for _, line := range strings.Split(strings.TrimRight(mb[1], "\n"), "\n") {
				if m := typo.FindStringSubmatch(line); m != nil {
					mistaken = strings.Replace(mistaken, m[2]+" = ", m[1]+" = ", 1)
				}
				b.WriteString("stderr '^" + strings.ReplaceAll(regexp.QuoteMeta(line), "'", "''") + "$'\n")
			}
		}
	}
	if u := usefulNext.FindStringSubmatch(page); u != nil {
		b.WriteString("exec nixflow init --force\n")
		for _, c := range inlineCmd.FindAllStringSubmatch(strings.ReplaceAll(u[1], "\n", " "), -1) {
			b.WriteString("exec " + c[1] + "\n")
		}
	}
	if example != nil {
		b.WriteString("-- example.nix --\n" + example[1])
	}
	if mistaken != "" {
		b.WriteString("-- mistaken.nix --\n" + mistaken)
	}
	return b.String(), nil
}
