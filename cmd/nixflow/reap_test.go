package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/actions"
)

// TestRunOver tells a run that is over from one that may still launch
// instances: a nixflow killed during RunInstances left no record, but
// its run's lock is free.
func TestRunOver(t *testing.T) {
	runs := t.TempDir()
	dir := filepath.Join(runs, "20261201-000000.000-aaaaaa")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if runOver(dir) {
		t.Error("a run without lock, records or result is over (it may be another machine's)")
	}
	unlock, err := lockRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if runOver(dir) {
		t.Error("a run whose nixflow holds its lock is over")
	}
	unlock()
	if !runOver(dir) {
		t.Error("a run whose lock nobody holds is not over (its nixflow was killed before it recorded an instance)")
	}
	other := filepath.Join(runs, "20261201-000001.000-bbbbbb")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, actions.ResultFileName), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !runOver(other) {
		t.Error("a run with a result is not over")
	}
}

// TestReapTargets: reap looks in the configuration's region and in those
// the runs here left instances in (with their endpoints), once each;
// --region alone when given.
func TestReapTargets(t *testing.T) {
	runs := t.TempDir()
	write := func(run, id, rec string) {
		dir := filepath.Join(runs, run, "ec2")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, id+".json"), []byte(rec), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("20261201-000000.000-aaaaaa", "i-1", `{"instanceId": "i-1", "region": "us-west-2", "runId": "a"}`)
	write("20261201-000000.000-aaaaaa", "i-2", `{"instanceId": "i-2", "region": "us-west-2", "runId": "a"}`)
	write("20261201-000001.000-bbbbbb", "i-3", `{"instanceId": "i-3", "region": "us-east-1", "endpoint": "http://127.0.0.1:5000", "runId": "b"}`)
	write("20261201-000001.000-bbbbbb", "i-4", `{"instanceId": "i-4", "region": "eu-west-1", "runId": "b", "terminated": "2026-12-01T00:00:00Z"}`)
	got := reapTargets(runs, "")
	want := []reapTarget{{}, {region: "us-west-2"}, {region: "us-east-1", endpoint: "http://127.0.0.1:5000"}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(reapTarget{})); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if got := reapTargets(runs, "ap-south-1"); !cmp.Equal(got, []reapTarget{{region: "ap-south-1"}}, cmp.AllowUnexported(reapTarget{})) {
		t.Errorf("with --region: %v", got)
	}
}
