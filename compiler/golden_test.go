package compiler

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"
)

// TestGolden compiles the graph.json of every testdata/*.txtar archive and
// compares the result with its plan.json or its errors file. Run with
// UPDATE_GOLDEN=1 to rewrite them (and review the diff).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	update := os.Getenv("UPDATE_GOLDEN") != ""
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var input []byte
			for _, f := range ar.Files {
				if f.Name == "graph.json" {
					input = f.Data
				}
			}
			if input == nil {
				t.Fatal("no graph.json in archive")
			}
			plan, err := Compile("graph.json", input)
			var name string
			var got []byte
			if err != nil {
				var list ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("Compile returned %T, want ErrorList: %v", err, err)
				}
				name, got = "errors", []byte(err.Error()+"\n")
			} else {
				name = "plan.json"
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetIndent("", "  ")
				if err := enc.Encode(plan); err != nil {
					t.Fatal(err)
				}
				got = buf.Bytes()
			}
			var want []byte
			found := false
			for i, f := range ar.Files {
				if f.Name == "plan.json" || f.Name == "errors" {
					if update {
						ar.Files[i] = txtar.File{Name: name, Data: got}
						found = true
						break
					}
					if f.Name != name {
						t.Fatalf("compiled to %s, archive wants %s:\n%s", name, f.Name, got)
					}
					want, found = f.Data, true
				}
			}
			if update {
				if !found {
					ar.Files = append(ar.Files, txtar.File{Name: name, Data: got})
				}
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !found {
				t.Fatalf("archive has neither plan.json nor errors; got %s:\n%s", name, got)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
			}
		})
	}
}
