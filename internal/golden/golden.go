// Package golden compares a test's output with a file of the expected
// output, and rewrites the file instead when UPDATE_GOLDEN is set (review
// the diff before committing it).
package golden

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Update reports whether this run rewrites golden files.
func Update() bool { return os.Getenv("UPDATE_GOLDEN") != "" }

// Check compares got with the file at path, or writes it there when
// updating.
func Check(t *testing.T, path string, got []byte) {
	t.Helper()
	if Update() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}
