package actions

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestReadResult: a result reads back as written, and one written with
// durations in nanoseconds (nixflow before duration strings) reads as it
// was meant.
func TestReadResult(t *testing.T) {
	for name, data := range map[string]string{
		"strings": `{"run": "r", "name": "n", "started": "2026-11-30T06:00:00Z", "duration": "1.5s",
			"jobs": [{"job": "a", "status": "success", "duration": "1.25s", "steps": [{"step": "s", "status": "success", "exitCode": 0, "duration": "1s"}]}]}`,
		"nanoseconds": `{"run": "r", "name": "n", "started": "2026-11-30T06:00:00Z", "duration": 1500000000,
			"jobs": [{"job": "a", "status": "success", "duration": 1250000000, "steps": [{"step": "s", "status": "success", "exitCode": 0, "duration": 1000000000}]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ResultFileName), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := ReadResult(dir)
			if err != nil {
				t.Fatal(err)
			}
			got := []time.Duration{res.Duration.Std(), res.Jobs[0].Duration.Std(), res.Jobs[0].Steps[0].Duration.Std()}
			want := []time.Duration{1500 * time.Millisecond, 1250 * time.Millisecond, time.Second}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("durations (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := ReadResult(t.TempDir()); !os.IsNotExist(err) {
		t.Errorf("no result: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ResultFileName), []byte(`{"duration": "soon"}`), 0o600)
	if _, err := ReadResult(dir); err == nil {
		t.Error("a bad duration was read")
	}
}
