package ocitest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/internal/testenv"
)

// TestRemoveTakesContainers: a container a test left running on the test
// image (one that failed before its own cleanup) goes with the image.
func TestRemoveTakesContainers(t *testing.T) {
	for _, runtime := range []string{"docker", "podman"} {
		t.Run(runtime, func(t *testing.T) {
			testenv.NeedCommand(t, runtime, runtime)
			ref, err := Image(runtime)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(runtime, "run", "--detach", ref, "sleep", "600").CombinedOutput()
			if err != nil {
				Remove()
				t.Fatalf("%s run: %v: %s", runtime, err, out)
			}
			id := strings.TrimSpace(string(out))
			Remove()
			if out, err := exec.Command(runtime, "ps", "--all", "--quiet", "--no-trunc", "--filter", "id="+id).Output(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
				exec.Command(runtime, "rm", "--force", id).Run()
				t.Errorf("the container %s is left after Remove: %q, %v", id, out, err)
			}
		})
	}
}
