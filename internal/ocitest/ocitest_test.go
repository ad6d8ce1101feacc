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
			ref := testImage(t, runtime)
			out, err := exec.Command(runtime, "run", "--detach", ref, "sleep", "600").CombinedOutput()
			if err != nil {
				Remove()
				t.Fatalf("%s run: %v: %s", runtime, err, out)
			}
			id := strings.TrimSpace(string(out))
			if err := Remove(); err != nil {
				t.Error(err)
			}
			if out, err := exec.Command(runtime, "ps", "--all", "--quiet", "--no-trunc", "--filter", "id="+id).Output(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
				exec.Command(runtime, "rm", "--force", id).Run()
				t.Errorf("the container %s is left after Remove: %q, %v", id, out, err)
			}
		})
	}
}

// TestRemoveSaysImageKept: an image a test made from the test image and
// left keeps the test image with docker (untagged, for good): Remove
// says so.
func TestRemoveSaysImageKept(t *testing.T) {
	for _, runtime := range []string{"docker", "podman"} {
		t.Run(runtime, func(t *testing.T) {
			ref := testImage(t, runtime)
			id, _ := exec.Command(runtime, "image", "inspect", "--format", "{{.Id}}", ref).Output()
			out, err := exec.Command(runtime, "create", ref, "true").Output()
			if err != nil {
				Remove()
				t.Fatalf("%s create: %v", runtime, err)
			}
			ctr := strings.TrimSpace(string(out))
			child, err := exec.Command(runtime, "commit", ctr).Output()
			exec.Command(runtime, "rm", ctr).Run()
			if err != nil {
				Remove()
				t.Fatalf("%s commit: %v", runtime, err)
			}
			t.Cleanup(func() {
				exec.Command(runtime, "image", "rm", "--force", strings.TrimSpace(string(child))).Run()
				exec.Command(runtime, "image", "rm", "--force", strings.TrimSpace(string(id))).Run()
			})
			// Docker keeps the image, untagged; podman removes the child
			// with it.
			err = Remove()
			kept := exec.Command(runtime, "image", "inspect", strings.TrimSpace(string(id))).Run() == nil
			if kept != (err != nil) || (err != nil && !strings.Contains(err.Error(), "is still there after its removal")) {
				t.Errorf("Remove = %v, the image kept: %v; want an error exactly when it is kept", err, kept)
			}
			if runtime == "docker" && !kept {
				t.Error("docker removed an image that has a child: this test's case did not happen")
			}
		})
	}
}

// testImage skips t without runtime, and returns its test image.
func testImage(t *testing.T, runtime string) string {
	t.Helper()
	testenv.NeedCommand(t, runtime, runtime)
	ref, err := Image(runtime)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
