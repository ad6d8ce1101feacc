package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckTreeSize(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "sub/c"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(n)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), []byte("12345"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The walk counts the directory itself, sub, and three files: 5.
	if err := checkTreeSize(dir, 1<<20, 5, nil); err != nil {
		t.Errorf("5 entries, limit 5: %v", err)
	}
	if err := checkTreeSize(dir, 1<<20, 4, nil); err == nil || !strings.Contains(err.Error(), "refusing to copy") {
		t.Errorf("5 entries, limit 4: %v, want a refusal", err)
	}
	if err := checkTreeSize(dir, 14, 100, nil); err == nil {
		t.Errorf("15 bytes, limit 14: no error")
	}
	if err := checkTreeSize(dir, 1<<20, 3, []string{filepath.Join(dir, "sub")}); err != nil {
		t.Errorf("sub excluded: %v", err)
	}
}
