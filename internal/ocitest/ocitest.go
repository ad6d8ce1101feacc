// Package ocitest builds the container image the tests of the OCI
// executor run steps in: Debian's busybox-static and bash-static, imported
// with `docker import` or `podman import` once per test binary, tagged with
// the binary's pid so that concurrent test binaries do not share (and
// remove) each other's images.
package ocitest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// images holds the image of each runtime, once built.
var images struct {
	sync.Mutex
	ref  map[string]string
	errs map[string]error
}

// Image returns the test image of runtime ("docker" or "podman"),
// building it on first use. Its PATH is /bin, which has bash and the
// busybox applets, and its ENV sets NIXFLOW_T_IMAGE=from-image; its
// /etc/passwd knows root and ci (1000:1000).
func Image(runtime string) (string, error) {
	images.Lock()
	defer images.Unlock()
	if images.ref == nil {
		images.ref, images.errs = map[string]string{}, map[string]error{}
	}
	if ref, ok := images.ref[runtime]; ok {
		return ref, nil
	}
	if err, ok := images.errs[runtime]; ok {
		return "", err
	}
	ref, err := build(runtime)
	if err != nil {
		images.errs[runtime] = err
		return "", err
	}
	images.ref[runtime] = ref
	return ref, nil
}

// Remove removes the images Image built, and the containers made from
// them that a test left (one that failed before its own cleanup): the
// images are this test process's, and so are their containers. (A
// forced image removal leaves its containers running, untagged.) It
// fails if an image is still there after: an image a test derived from
// it and left (docker commit) keeps it, untagged, for good.
func Remove() error {
	images.Lock()
	defer images.Unlock()
	var errs []error
	for runtime, ref := range images.ref {
		id, _ := exec.Command(runtime, "image", "inspect", "--format", "{{.Id}}", ref).Output()
		if ids, err := exec.Command(runtime, "ps", "--all", "--quiet", "--filter", "ancestor="+ref).Output(); err == nil && len(strings.Fields(string(ids))) > 0 {
			_ = exec.Command(runtime, append([]string{"rm", "--force"}, strings.Fields(string(ids))...)...).Run()
		}
		_ = exec.Command(runtime, "image", "rm", "--force", ref).Run()
		if id := strings.TrimSpace(string(id)); id != "" && exec.Command(runtime, "image", "inspect", id).Run() == nil {
			errs = append(errs, fmt.Errorf("%s: the test image %s (%s) is still there after its removal: an image made from it (docker commit) was left behind", runtime, ref, id))
		}
	}
	images.ref = nil
	return errors.Join(errs...)
}

func build(runtime string) (string, error) {
	busybox, err1 := exec.LookPath("busybox")
	bash, err2 := exec.LookPath("bash-static")
	if err := errors.Join(err1, err2); err != nil {
		return "", fmt.Errorf("the test image needs Debian's busybox-static and bash-static: %w", err)
	}
	root, err := os.MkdirTemp("", "nixflow-oci-image")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	for _, d := range []string{"bin", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return "", err
	}
	for src, dst := range map[string]string{busybox: "bin/busybox", bash: "bin/bash"} {
		b, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(root, dst), b, 0o755); err != nil {
			return "", err
		}
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return "", err
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "bash" || applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			return "", err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\nci:x:1000:1000:ci:/tmp:/bin/bash\n",
		"etc/group":  "root:x:0:\nci:x:1000:\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			return "", err
		}
	}
	ref := "nixflow-test-bash:" + strconv.Itoa(os.Getpid())
	if runtime == "podman" {
		ref = "localhost/" + ref
	}
	tar := exec.Command("tar", "-C", root, "-c", ".")
	imp := exec.Command(runtime, "import", "--change", "ENV PATH=/bin", "--change", "ENV NIXFLOW_T_IMAGE=from-image", "-", ref)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		return "", err
	}
	imp.Stdin = pipe
	var stderr bytes.Buffer
	imp.Stderr = &stderr
	if err := tar.Start(); err != nil {
		return "", err
	}
	ierr := imp.Run()
	if err := errors.Join(ierr, tar.Wait()); err != nil {
		return "", fmt.Errorf("%s import of the test image: %w: %s", runtime, err, strings.TrimSpace(stderr.String()))
	}
	return ref, nil
}
