package ec2

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Record is what the run directory keeps of one launched instance, in
// RUNDIR/ec2/<instance-id>.json: written the moment RunInstances returns,
// before anything else, and rewritten once the instance is terminated.
// A run killed in between leaves a record without Terminated, which
// `nixflow ec2 reap` and the summary read.
type Record struct {
	InstanceID string    `json:"instanceId"`
	Region     string    `json:"region"`
	Endpoint   string    `json:"endpoint,omitempty"`
	RunID      string    `json:"runId"`
	Job        string    `json:"job,omitempty"`
	Executor   string    `json:"executor,omitempty"`
	Launched   time.Time `json:"launched"`
	ExpiresAt  time.Time `json:"expiresAt"`
	// PID is the nixflow process that launched the instance: while it
	// lives, the run is not over.
	PID        int       `json:"pid"`
	Terminated time.Time `json:"terminated,omitzero"`
	// Error is the last termination error, while the instance may still
	// be running.
	Error string `json:"error,omitempty"`
}

// recordDir is where a run's instance records are.
func recordDir(runDir string) string { return filepath.Join(runDir, "ec2") }

// keysDir is where the private keys of a run's instances are, one
// directory an instance.
func keysDir(runDir string) string { return filepath.Join(recordDir(runDir), "keys") }

// makeKeyDir makes a private directory for an instance's key: in the run
// directory, or in the temp directory when there is none.
func makeKeyDir(runDir string) (string, error) {
	if runDir == "" {
		return os.MkdirTemp("", "nixflow-ec2-")
	}
	if err := os.MkdirAll(keysDir(runDir), 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(keysDir(runDir), "")
}

// removeKeyDir removes an instance's key directory, and the run's keys
// directory once it is empty.
func removeKeyDir(dir string) {
	_ = os.RemoveAll(dir)
	if parent := filepath.Dir(dir); filepath.Base(parent) == "keys" {
		_ = os.Remove(parent) // fails while other instances' keys are there
	}
}

// RemoveKeys removes the private keys a run left (when nixflow was killed
// before it terminated its instances): of no use once the instances are
// terminated.
func RemoveKeys(runDir string) error {
	return os.RemoveAll(keysDir(runDir))
}

// writeRecord writes r atomically.
func writeRecord(runDir string, r Record) error {
	dir := recordDir(runDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, r.InstanceID+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readRecord reads the instance record in file.
func readRecord(file string) (Record, error) {
	var r Record
	data, err := os.ReadFile(file)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("instance record %s: %w", filepath.Base(file), err)
	}
	return r, nil
}

// Records reads the instance records of a run, by launch time. A run
// without instances has none (and no error).
func Records(runDir string) ([]Record, error) {
	entries, err := os.ReadDir(recordDir(runDir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		r, err := readRecord(filepath.Join(recordDir(runDir), e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Launched.Before(out[j].Launched) })
	return out, nil
}
