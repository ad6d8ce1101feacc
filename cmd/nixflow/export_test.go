package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExportOnlyProduced: an artifact whose copy failed part-way (its
// data there, no record of it) is not exported as if it were produced.
func TestExportOnlyProduced(t *testing.T) {
	run, dst := t.TempDir(), t.TempDir()
	for _, name := range []string{"whole", "partial"} {
		data := filepath.Join(run, "artifacts", name, "data")
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "f"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	meta := `{"name": "whole", "job": "j", "path": "out", "dir": true}`
	if err := os.WriteFile(filepath.Join(run, "artifacts", "whole", "meta.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := exportArtifacts(run, dst)
	if err != nil || n != 1 {
		t.Fatalf("exportArtifacts: %d, %v; want 1 exported", n, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "whole", "f")); err != nil {
		t.Errorf("the produced artifact is not exported: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "partial")); err == nil {
		t.Error("the artifact without a record was exported")
	}
}
