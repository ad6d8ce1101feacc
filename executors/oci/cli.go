package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixflow/nixflow/executors"
)

// cli runs one container runtime's command-line client.
type cli struct {
	name string // "docker" or "podman"
	path string
	// env is the client's environment (nixflow's); nil inherits it.
	env []string
	// rootless is set for podman run by a user other than root.
	rootless bool
}

// findRuntime returns the client for runtime ("auto", "docker" or
// "podman"), checking that it answers. "auto" takes docker if its daemon
// answers, else podman.
func findRuntime(ctx context.Context, runtime string, env []string) (*cli, error) {
	names := []string{runtime}
	if runtime == "auto" {
		names = []string{"docker", "podman"}
	}
	var errs []error
	for _, name := range names {
		c, err := probe(ctx, name, env)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("find container runtime: %w", ctx.Err())
		}
		errs = append(errs, err)
	}
	if runtime == "auto" {
		return nil, fmt.Errorf("no container runtime answers (%w); hint: start the docker daemon or install podman, or choose one with runtime = \"docker\" or \"podman\"", errors.Join(errs...))
	}
	return nil, errs[0]
}

// probe checks that the runtime name is installed and answers.
func probe(ctx context.Context, name string, env []string) (*cli, error) {
	p, err := lookPath(name, env)
	if err != nil {
		return nil, fmt.Errorf("%s is not on PATH; hint: install %s, or choose the other runtime with runtime = %q", name, name, other(name))
	}
	c := &cli{name: name, path: p, env: env}
	format := "{{.ServerVersion}}"
	if name == "podman" {
		format = "{{.Host.Security.Rootless}}"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := c.output(ctx, nil, "info", "--format", format)
	if err != nil {
		return nil, err
	}
	if name == "docker" && strings.TrimSpace(out) == "" {
		// docker info exits 0 with no server when DOCKER_HOST names
		// something that is not a docker daemon.
		return nil, &cliError{runtime: name, args: []string{"info"}, stderr: "no docker daemon answers (docker info names no server version)",
			err: errors.New("no server")}
	}
	c.rootless = name == "podman" && strings.TrimSpace(out) == "true"
	return c, nil
}

func other(name string) string {
	if name == "docker" {
		return "podman"
	}
	return "docker"
}

// command returns the client command for args.
func (c *cli) command(args ...string) *exec.Cmd {
	cmd := executors.OwnGroup(exec.Command(c.path, args...))
	cmd.Env = c.env
	return cmd
}

// output runs the client with args and stdin, and returns its standard
// output; a failure is a *cliError. ctx stops the client.
func (c *cli) output(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	return c.outputStarted(ctx, stdin, nil, args...)
}

// outputStarted is output, calling started (if not nil) with the
// client's process once it started.
func (c *cli) outputStarted(ctx context.Context, stdin io.Reader, started func(*os.Process), args ...string) (string, error) {
	cmd := executors.OwnGroupContext(exec.CommandContext(ctx, c.path, args...))
	cmd.Env = c.env
	cmd.Stdin = stdin
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Start()
	if err == nil {
		if started != nil {
			started(cmd.Process)
		}
		err = cmd.Wait()
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s %s: %w", c.name, args[0], ctx.Err())
		}
		return stdout.String(), &cliError{runtime: c.name, args: args, stderr: strings.TrimSpace(stderr.String()), err: err}
	}
	return stdout.String(), nil
}

// cliError is a failed client command.
type cliError struct {
	runtime string
	args    []string
	stderr  string
	err     error
}

func (e *cliError) Error() string {
	msg := e.stderr
	if msg == "" {
		msg = e.err.Error()
	}
	// The client's messages run over several lines at times; the first
	// line of an error says enough, and a hint follows.
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	s := fmt.Sprintf("%s %s: %s", e.runtime, e.args[0], msg)
	if h := e.hint(); h != "" {
		s += "; hint: " + h
	}
	return s
}

func (e *cliError) Unwrap() error { return e.err }

// hint says what to do about a client failure, when the message says
// what went wrong.
func (e *cliError) hint() string {
	m := strings.ToLower(e.stderr)
	switch {
	case strings.Contains(m, "cannot connect to the docker daemon") || strings.Contains(m, "is the docker daemon running"):
		return "start the docker daemon (systemctl start docker), or use runtime = \"podman\""
	case strings.Contains(m, "permission denied") && strings.Contains(m, ".sock"):
		return fmt.Sprintf("your user may not use the %s socket: join the docker group, or use rootless podman", e.runtime)
	case strings.Contains(m, "rlimit") || strings.Contains(m, "cgroup"):
		return "the runtime could not set up the container's limits: for podman as root, a containers.conf (CONTAINERS_CONF) with default_ulimits = [], cgroup_manager = \"cgroupfs\" and runtime = \"runc\" helps (see docs/executors.md)"
	case strings.Contains(m, "error mounting") || strings.Contains(m, "invalid mount") || strings.Contains(m, "bind source path does not exist") ||
		strings.Contains(m, "statfs") || strings.Contains(m, "mount"):
		return "check the executor's volumes: each host path must exist (HOST:CONTAINER[:ro])"
	case strings.Contains(m, "executable file not found") || strings.Contains(m, "no such file or directory") && strings.Contains(m, "bash"):
		return "the image needs bash on its PATH (nixflow runs every step with bash); use an image with bash, or no image and deps that include bash"
	}
	return ""
}

// notFound reports whether a client failure says an object (image,
// container) does not exist.
func notFound(err error) bool {
	var ce *cliError
	if !errors.As(err, &ce) {
		return false
	}
	m := strings.ToLower(ce.stderr)
	return strings.Contains(m, "no such") || strings.Contains(m, "not known") || strings.Contains(m, "not found")
}

// imageMissing reports whether a failed run says the image is not on
// this machine.
func imageMissing(err error) bool {
	var ce *cliError
	if !errors.As(err, &ce) {
		return false
	}
	m := strings.ToLower(ce.stderr)
	return strings.Contains(m, "no such image") || strings.Contains(m, "image not known") ||
		strings.Contains(m, "unable to find image") || strings.Contains(m, "does not exist in local storage")
}

// ensureImage checks that image is on this machine, and pulls it if not.
func (c *cli) ensureImage(ctx context.Context, image string, log interface {
	Logf(format string, args ...any)
}) error {
	_, err := c.output(ctx, nil, "image", "inspect", "--format", "{{.Id}}", image)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("image %q: %w", image, ctx.Err())
	}
	if !notFound(err) {
		return fmt.Errorf("image %q: %w", image, err)
	}
	log.Logf("pulling image %s", image)
	if _, perr := c.output(ctx, nil, "pull", "--quiet", image); perr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pull image %q: %w", image, ctx.Err())
		}
		var ce *cliError
		msg := perr.Error()
		if errors.As(perr, &ce) {
			// The last line: podman's first ones are its retries.
			msg = ce.stderr
			if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
				msg = msg[i+1:]
			}
		}
		return fmt.Errorf("image %q is not on this machine and could not be pulled (%s); hint: load it with `%s load -i FILE.tar`, or make one with `%s import ROOTFS.tar %s`",
			image, msg, c.name, c.name, image)
	}
	return nil
}

// remove removes a container and its anonymous volumes, whatever its
// state; a container that is already gone, or going (another client
// removes it), is not an error.
func (c *cli) remove(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	args := []string{"rm", "--force", "--volumes"}
	if c.name == "podman" {
		args = append(args, "--time", "0")
	}
	_, err := c.output(ctx, nil, append(args, ids...)...)
	switch {
	case err == nil:
		return nil
	case len(ids) == 1:
		if notFound(err) || removing(err) {
			return nil
		}
		return err
	}
	// Which failed, and why: one at a time (those removed are not
	// found now).
	var errs []error
	for _, id := range ids {
		errs = append(errs, c.remove(ctx, id))
	}
	return errors.Join(errs...)
}

// removing reports whether a failed rm says another client is removing
// the container.
func removing(err error) bool {
	var ce *cliError
	if !errors.As(err, &ce) {
		return false
	}
	m := strings.ToLower(ce.stderr)
	return strings.Contains(m, "already in progress") || strings.Contains(m, "being removed")
}

// lookPath finds the client name in the PATH of env, or nixflow's own
// when env is nil or has none.
func lookPath(name string, env []string) (string, error) {
	for i := len(env) - 1; i >= 0; i-- {
		if dirs, ok := strings.CutPrefix(env[i], "PATH="); ok {
			for _, d := range filepath.SplitList(dirs) {
				if d == "" {
					continue
				}
				p := filepath.Join(d, name)
				if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
					return p, nil
				}
			}
			return "", exec.ErrNotFound
		}
	}
	return exec.LookPath(name)
}
