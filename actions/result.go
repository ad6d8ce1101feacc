package actions

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nixflow/nixflow/timing"
)

// ResultFileName is the file in a run directory that holds the run's
// Result, written when the run ends.
const ResultFileName = "result.json"

// ReadResult reads the result of the run in runDir; a run without one
// crashed or is still running. Results written before durations were
// duration strings (numbers of nanoseconds) are read as they were meant.
func ReadResult(runDir string) (*Result, error) {
	path := filepath.Join(runDir, ResultFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Result
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var probe struct {
		Duration json.RawMessage `json:"duration"`
	}
	if json.Unmarshal(data, &probe) != nil || len(probe.Duration) == 0 || probe.Duration[0] == '"' {
		return &res, nil
	}
	var ns struct {
		Duration int64 `json:"duration"`
		Jobs     []struct {
			Duration int64 `json:"duration"`
			Steps    []struct {
				Duration int64 `json:"duration"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(data, &ns); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	res.Duration = timing.Duration(ns.Duration)
	for i, j := range ns.Jobs {
		res.Jobs[i].Duration = timing.Duration(j.Duration)
		for k, s := range j.Steps {
			res.Jobs[i].Steps[k].Duration = timing.Duration(s.Duration)
		}
	}
	return &res, nil
}
