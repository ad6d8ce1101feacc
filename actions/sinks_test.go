package actions

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestJobLogsFull: a job log that cannot be written (a full disk, here
// /dev/full) is reported once for its job, naming the file; the other
// jobs' logs are written as usual.
func TestJobLogsFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := t.TempDir()
	logs, err := NewJobLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full.log")
	if err := os.Symlink("/dev/full", full); err != nil {
		t.Fatal(err)
	}
	var reports []string
	logs.OnError = func(job, file string, err error) { reports = append(reports, job+" "+file) }
	for i := 0; i < 3; i++ {
		logs.Emit(Event{Job: "full", Event: EventOutput, Message: "x"}, Event{Job: "ok", Event: EventOutput, Message: "y"})
	}
	logs.Emit(Event{Job: "full", Event: EventJobEnd}, Event{Job: "ok", Event: EventJobEnd})
	if err := logs.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if diff := cmp.Diff([]string{"full " + full}, reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	data, err := os.ReadFile(filepath.Join(dir, "ok.log"))
	if err != nil || len(data) == 0 {
		t.Errorf("ok.log: %q, %v", data, err)
	}
}
