package local

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/nixflow/nixflow/executors"
)

// TestReadTempFile: a control file is read in place; a missing one, and
// a FIFO a step made, read as missing (and the FIFO does not block); a
// symbolic link inside the temporary directory is followed, one leading
// out of it is ErrOutside; a path is refused.
func TestReadTempFile(t *testing.T) {
	w := prepare(t, executors.JobSpec{})
	tmp := w.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	for name, data := range map[string]string{"env": "A=1\n", outside: "not yours\n"} {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(tmp, name)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("env", filepath.Join(tmp, "inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(tmp, "output")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(tmp, "path"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"env", "inside"} {
		if data, err := w.ReadTempFile(name); err != nil || string(data) != "A=1\n" {
			t.Errorf("ReadTempFile(%q) = %q, %v; want the file", name, data, err)
		}
	}
	for _, name := range []string{"missing", "path"} {
		if _, err := w.ReadTempFile(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadTempFile(%q) = %v, want fs.ErrNotExist", name, err)
		}
	}
	if data, err := w.ReadTempFile("output"); !errors.Is(err, executors.ErrOutside) {
		t.Errorf("ReadTempFile through a link out = %q, %v; want ErrOutside", data, err)
	}
	if _, err := w.ReadTempFile("../tmp/env"); err == nil {
		t.Error("ReadTempFile of a path: no error")
	}
}
