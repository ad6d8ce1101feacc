package main

import (
	"fmt"
	"os"
)

// checkArtifactsDir makes sure, before a run starts, that --artifacts-dir
// can be written: finding out after an hour of building is too late. It
// creates the directory.
func checkArtifactsDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--artifacts-dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".nixflow-check-*")
	if err != nil {
		return fmt.Errorf("--artifacts-dir %s: cannot write there: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}
