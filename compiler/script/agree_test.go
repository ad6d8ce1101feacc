package script

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The compiled script carries its own readers of what nixflow run reads
// with Go libraries (dotenv files, sops' JSON). The tests here feed both
// the same documents and want the same variables, or the same error.

// agreeDocs writes each document to a file of its own in dir, and
// returns their paths.
func agreeDocs(t *testing.T, dir string, docs []string) []string {
	t.Helper()
	var files []string
	for i, d := range docs {
		f := filepath.Join(dir, fmt.Sprintf("%d.doc", i))
		if err := os.WriteFile(f, []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// readAll runs one bash, with the runtime sourced, that reads input a
// line at a time and runs read (which sets nf_pk and nf_pv, or nf_err,
// from the document named by $f, with $arg the rest of the line). It
// returns what each line gave, in readResult's form.
func readAll(t *testing.T, read string, input []string, env ...string) []string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	rt := filepath.Join(t.TempDir(), "runtime.bash")
	if err := os.WriteFile(rt, []byte(runtime), 0o644); err != nil {
		t.Fatal(err)
	}
	harness := `source "$1"
while read -r f arg; do
  IFS= read -r -d '' data <"$f"
  declare -A nf_pv=(); nf_pk=()
  if ` + read + `; then
    printf 'ok\0'
    for k in "${nf_pk[@]}"; do printf '%s\0%s\0' "$k" "${nf_pv[$k]}"; done
  else
    printf 'error\0%s\0' "$nf_err"
  fi
  printf 'end\0'
done`
	cmd := exec.Command(bash, "-c", harness, "bash", rt)
	cmd.Stdin = strings.NewReader(strings.Join(input, "\n") + "\n")
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, stderr.String())
	}
	var results, fields []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "end" {
			fields = append(fields, f)
			continue
		}
		if len(fields) == 2 && fields[0] == "error" {
			results = append(results, readResult(nil, fmt.Errorf("%s", fields[1])))
		} else {
			vals := map[string]string{}
			for i := 1; i+1 < len(fields); i += 2 {
				vals[fields[i]] = fields[i+1]
			}
			results = append(results, readResult(vals, nil))
		}
		fields = nil
	}
	if len(results) != len(input) {
		t.Fatalf("bash read %d documents of %d\n%s", len(results), len(input), stderr.String())
	}
	return results
}

// readResult says what a reader gave: its variables in name order, or its
// error.
func readResult(vals map[string]string, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var pairs []string
	for k, v := range vals {
		pairs = append(pairs, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(pairs)
	return "ok " + strings.Join(pairs, " ")
}

// agree compares the script's results with nixflow run's, document by
// document, showing a few of the documents that differ.
func agree(t *testing.T, label string, docs, script, run []string) {
	t.Helper()
	failures := 0
	for i, d := range docs {
		if script[i] == run[i] {
			continue
		}
		failures++
		if failures <= 5 {
			t.Errorf("%sdocument %q:\nscript:      %.2000s\nnixflow run: %.2000s", label, d, script[i], run[i])
		}
	}
	if failures > 5 {
		t.Errorf("%s%d documents of %d differ", label, failures, len(docs))
	}
}
