package nixflow_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCrossBuild builds every package, tests included (go vet compiles
// them), for the other systems the flake advertises: a Linux-only
// syscall slipping into a shared file breaks the darwin build, which no
// Linux test run would notice otherwise.
func TestCrossBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds take a while the first time: not in -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			t.Skip("no go command on PATH")
		}
	}
	for _, target := range []struct{ goos, goarch string }{
		{"darwin", "arm64"},
		{"linux", "arm64"},
	} {
		t.Run(target.goos+"_"+target.goarch, func(t *testing.T) {
			t.Parallel()
			for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
				cmd := exec.Command(gobin, args...)
				cmd.Env = append(os.Environ(), "GOOS="+target.goos, "GOARCH="+target.goarch, "CGO_ENABLED=0")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("GOOS=%s GOARCH=%s go %s: %v\n%s", target.goos, target.goarch, args[0], err, out)
				}
			}
		})
	}
}
