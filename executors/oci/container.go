package oci

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/watchdog"
)

// Labels put on everything nixflow creates.
const (
	LabelRun        = "io.nixflow.run"
	LabelJob        = "io.nixflow.job"
	LabelOwnerPID   = "io.nixflow.owner-pid"
	LabelOwnerStart = "io.nixflow.owner-start"
	LabelHost       = "io.nixflow.host"
	LabelCreatedAt  = "io.nixflow.created-at"
	LabelClosure    = "io.nixflow.closure"
	// LabelGuard is the token of the executor that made the container:
	// its watchdog removes the containers with its token (guard.go).
	LabelGuard = "io.nixflow.guard"
)

// keepAlive is the container's first process: it waits on its standard
// input, which the runtime keeps open (run -i), and reaps orphans (bash
// reaps every child on SIGCHLD once it has a handler). A read cut short
// by a signal goes on; end of input ends the container.
const keepAlive = `trap : CHLD; while :; do read -r _; r=$?; [ "$r" -gt 128 ] || [ "$r" = 0 ] || exit 0; done`

// mount is a bind mount.
type mount struct {
	host, ctr string
	ro        bool
}

func (m mount) String() string {
	s := "type=bind,source=" + m.host + ",target=" + m.ctr
	if m.ro {
		s += ",readonly"
	}
	return s
}

// startSpec is what a container is started with.
type startSpec struct {
	image, runID, job, user string
	mounts                  []mount
	volumes, options        []string
	// guard is told of the container's creation (guard.go), whose
	// token labels it.
	guard      *watchdog.Guard
	guardToken string
}

// container is a started container.
type container struct {
	id string
}

// labels returns the labels of a container of job in run runID.
func labels(runID, job string) []string {
	return []string{
		LabelRun + "=" + runID,
		LabelJob + "=" + job,
		LabelOwnerPID + "=" + strconv.Itoa(os.Getpid()),
		LabelOwnerStart + "=" + processStart(os.Getpid()),
		LabelHost + "=" + hostname(),
		LabelCreatedAt + "=" + time.Now().UTC().Format(time.RFC3339),
	}
}

// hostname is where nixflow runs, as the LabelHost label says it: the
// host name, and the PID namespace (where /proc tells it), so that the
// owner pid of a container is looked for only where it is meaningful. A
// nixflow in a CI runner's container, with the host's docker socket and
// host name, has containers another nixflow's sweep must leave alone.
func hostname() string {
	h, _ := os.Hostname()
	if ns, err := os.Readlink("/proc/self/ns/pid"); err == nil {
		h += " " + ns
	}
	return h
}

// start creates and starts a container and reads its environment.
func (c *cli) start(ctx context.Context, s startSpec) (*container, error) {
	name := containerName(s.job)
	args := []string{"run", "--detach", "--interactive", "--pull", "never", "--name", name, "--entrypoint", "bash"}
	for _, l := range labels(s.runID, s.job) {
		args = append(args, "--label", l)
	}
	if s.guardToken != "" {
		args = append(args, "--label", LabelGuard+"="+s.guardToken)
	}
	if c.rootless && !slices.ContainsFunc(s.options, func(o string) bool { return strings.HasPrefix(o, "--userns") }) {
		args = append(args, "--userns=keep-id")
	}
	if s.user != "" {
		args = append(args, "--user", s.user)
	}
	for _, m := range s.mounts {
		args = append(args, "--mount", m.String())
	}
	for _, v := range s.volumes {
		args = append(args, "--volume", v)
	}
	args = append(args, s.options...)
	args = append(args, s.image, "-c", keepAlive)
	// The client is not stopped midway: a podman killed during a create
	// leaves a runtime container (runc's, with its conmon) that no podman
	// command lists, so that nothing could remove it. A Prepare cancelled
	// meanwhile waits for the create, a second or so, then removes what
	// it made.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	out, err := c.outputStarted(cctx, nil, func(p *os.Process) { s.guard.Note(createNote(name, p.Pid)) }, args...)
	s.guard.Note(createdNote(name))
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("%s run: %w", c.name, ctx.Err())
	}
	if err != nil {
		// A container made but not started (a failed mount, no bash)
		// is still there.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
		defer cancel()
		_ = c.remove(rctx, name)
		return nil, fmt.Errorf("start container from %q: %w", s.image, err)
	}
	id := strings.TrimSpace(out)
	if i := strings.LastIndexByte(id, '\n'); i >= 0 { // after pull messages
		id = id[i+1:]
	}
	return &container{id: id}, nil
}

// createTimeout bounds the creation of a container, which a cancelled
// Prepare waits for.
const createTimeout = 30 * time.Second

// containerName is a fresh container name for job, readable in ps.
func containerName(job string) string {
	var b strings.Builder
	b.WriteString("nixflow-")
	for _, r := range job {
		if b.Len() > 48 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return b.String() + "-" + hex.EncodeToString(rnd[:])
}

// storeClosure returns the closure of the store paths paths.
func storeClosure(ctx context.Context, paths []string) ([]string, error) {
	if _, err := exec.LookPath("nix-store"); err != nil {
		return nil, fmt.Errorf("the steps need Nix store paths but nix-store is not on PATH; hint: install Nix")
	}
	cmd := executors.OwnGroupContext(exec.CommandContext(ctx, "nix-store", append([]string{"--query", "--requisites"}, paths...)...))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("query the deps' closure: %w", ctx.Err())
		}
		return nil, fmt.Errorf("query the deps' closure: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.Fields(string(out)), nil
}
