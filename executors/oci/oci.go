// Package oci is the executor that runs steps in containers, with the
// docker or the podman command-line client.
//
// # Containers
//
// Each job gets a long-lived container (mode "isolated", the default), or
// the jobs of one executor value share one per run (mode "shared"). The
// container's first process is a bash loop that does nothing but reap
// orphaned processes, so the image must have bash on its PATH (the runner
// runs every step with bash anyway); each step then runs through `exec`,
// its exit status passed on exactly (126, 127 and 128+N included).
//
// The job's workspace, a directory of the run on this machine
// (<RunDir>/jobs/<job>, filled as for the local executor, copyRepo
// included), is bind-mounted at Workdir (default /workspace); its private
// temporary directory (the control files JOB_ENV, JOB_PATH, JOB_OUTPUT) at
// /nixflow/tmp. In shared mode the run's jobs and tmp directories are
// mounted instead, and a job's directories are <Workdir>/<job> and
// /nixflow/tmp/<job>. Artifacts are copied on this machine, through the
// mounts. Files the steps create are made the invoking user's again
// before they are copied out and at teardown (chown in the container),
// when nixflow does not run as root; rootless podman runs the container
// with --userns=keep-id, so that they are from the start.
//
// # Environment
//
// A step sees the image's environment (its ENV) with the step's declared
// environment over it and the PathPrepend directories in front of PATH.
// Values travel on the exec's standard input, never on a command line.
// Variable names bash cannot export (with a dot, say) are dropped.
//
// # Nix store paths
//
// The closure of the job's store paths (nix-store -qR) is mounted
// read-only at the same paths, each path on its own (the whole /nix/store
// in shared mode, whose container outlives any one job), also over an
// image nixflow assembled, so that the store stays read-only. Without an
// image, the container starts from an image nixflow assembles from that
// closure: the closure itself, /bin/bash and /bin/sh (links to the first
// dep with a bin/bash), /tmp, a root entry in /etc/passwd and PATH = the
// deps' bin directories. It is cached by the closure's hash, as
// nixflow-closure:<hash>, and labelled io.nixflow.closure.
//
// # Stopping steps and cleaning up
//
// A step is the leader of a process group in the container. When it is
// stopped, the escalation of the local executor (SIGINT or SIGTERM, then
// SIGTERM, then SIGKILL, each followed by SIGCONT) goes to that group
// through a second exec, for as long as the group has members. When a
// step ends, whatever it left running is killed: in isolated mode every
// process of the container but its first; in shared mode every process
// carrying the step's NIXFLOW_STEP_COOKIE variable.
//
// Every container is labelled with the run id, the job, the pid and
// start time of the nixflow process that owns it, the host and the time
// it was made, and is removed at teardown (or, shared, at Close) whatever
// happened. Containers whose owner is gone (nixflow was killed with
// SIGKILL) are removed by the first Prepare of the next run on the same
// runtime, and by `nixflow gc` (see Sweep).
package oci

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/local"
	"github.com/nixflow/nixflow/executors/watchdog"
)

// tmpMount is where a job's temporary directory is mounted.
const tmpMount = compiler.OCIControlDir + "/tmp"

// Executor runs jobs in containers of one configuration.
type Executor struct {
	cfg     compiler.OCIExecutor
	name    string
	runID   string
	environ []string // the CLI's environment; nil: nixflow's
	log     hclog.Logger

	mu     sync.Mutex
	cli    *cli   // resolved runtime, once found
	shared *share // the shared container, in shared mode
	// runIDs are the runs Prepare made containers for, whose leftovers
	// Close removes.
	runIDs map[string]bool
	swept  bool
	// guard removes the containers labelled with guardToken if nixflow is
	// killed (guard.go); nil: none.
	guard      *watchdog.Guard
	guardToken string

	// host makes the jobs' directories on this machine, mounted into the
	// containers: one for the executor, whose snapshot of the repository
	// is the run's (every executor of the run shares it), closed by Close.
	host local.Executor
	// imageUsers caches the user each image runs as (imageUser).
	imageUsers sync.Map
}

// imageUser is the user the configured image runs its processes as,
// when it is not root: the steps of a job run as that user, who must be
// given the workspace (docs: user defaults to the image's). Closure
// images run as root. An image that cannot be inspected is taken as
// root: a step then says what it cannot write.
func (e *Executor) imageUser(ctx context.Context, c *cli) string {
	if e.cfg.User != "" || e.cfg.Image == "" {
		return e.cfg.User
	}
	if u, ok := e.imageUsers.Load(e.cfg.Image); ok {
		return u.(string)
	}
	out, err := c.output(ctx, nil, "image", "inspect", "--format", "{{.Config.User}}", e.cfg.Image)
	if err != nil {
		e.log.Debug("inspect the image's user", "image", e.cfg.Image, "error", err)
		return ""
	}
	u := strings.TrimSpace(out)
	if name, _, _ := strings.Cut(u, ":"); name == "root" || name == "0" {
		u = ""
	}
	e.imageUsers.Store(e.cfg.Image, u)
	return u
}

var _ executors.Executor = (*Executor)(nil)

// New returns an OCI executor for p.Config, a *compiler.OCIExecutor. It
// does no slow work: the runtime is found by the first Prepare.
func New(p executors.Params) (executors.Executor, error) {
	cfg, ok := p.Config.(*compiler.OCIExecutor)
	if !ok || cfg == nil {
		return nil, fmt.Errorf("oci executor: unexpected configuration %T", p.Config)
	}
	c := *cfg
	if c.Runtime == "" {
		c.Runtime = "auto"
	}
	if c.Mode == "" {
		c.Mode = "isolated"
	}
	if c.Workdir == "" {
		c.Workdir = "/workspace"
	}
	if !path.IsAbs(c.Workdir) || path.Clean(c.Workdir) != c.Workdir || c.Workdir == "/" {
		return nil, fmt.Errorf("oci executor: workdir %q is not an absolute path other than /", c.Workdir)
	}
	log := p.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	e := &Executor{cfg: c, name: p.Name, runID: p.RunID, environ: p.Environ, log: log, guardToken: rand.Text()}
	// The shared container mounts the run's jobs directory once: a job's
	// overlay mounted there later would not reach it (the bind mount is
	// private), so its workspace is a copy.
	e.host.NoOverlay = c.Mode == "shared"
	return e, nil
}

// runtime finds the container runtime the first time it is needed, and
// sweeps the containers of dead runs on it once.
func (e *Executor) runtime(ctx context.Context, spec executors.JobSpec) (*cli, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cli == nil {
		c, err := findRuntime(ctx, e.cfg.Runtime, e.environ)
		if err != nil {
			return nil, err
		}
		e.cli = c
		e.guard, err = watchdog.Start(containersKind, c.env, c.name, c.path, e.guardToken, strconv.Itoa(os.Getpid()))
		if err != nil {
			e.log.Warn("no watchdog: the containers will not be removed at once if nixflow is killed", "error", err)
		}
	}
	if !e.swept {
		e.swept = true
		n, err := e.cli.sweep(ctx, nil)
		if err != nil {
			e.log.Warn("sweep of old containers failed", "runtime", e.cli.name, "error", err)
		} else if n > 0 {
			spec.Logf("removed %s of runs that are gone", executors.Count(n, "container", "containers"))
		}
	}
	return e.cli, nil
}

// Prepare makes the job's workspace and its container (isolated mode), or
// joins the shared container.
func (e *Executor) Prepare(ctx context.Context, spec executors.JobSpec) (executors.Workspace, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("prepare container: %w", err)
	}
	e.mu.Lock()
	if e.runIDs == nil {
		e.runIDs = map[string]bool{}
	}
	e.runIDs[spec.RunID] = true
	e.mu.Unlock()
	c, err := e.runtime(ctx, spec)
	if err != nil {
		return nil, err
	}
	if spec.CopyRepo {
		spec.Logf("copying the repository into the workspace")
	}
	lw, err := e.host.Prepare(ctx, spec)
	if err != nil {
		return nil, err
	}
	w := &workspace{
		cli: c, host: lw, cookie: e.cfg.Mode == "shared",
		dir: e.cfg.Workdir, tempDir: tmpMount, hostDir: lw.Dir(), hostTemp: lw.TempDir(),
		user: e.cfg.User, log: e.log.With("job", spec.Job), uid: os.Getuid(), gid: os.Getgid(),
	}
	fail := func(err error) (executors.Workspace, error) {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
		defer cancel()
		if w.ctr != nil && !w.cookie {
			_ = c.remove(tctx, w.ctr.id)
		}
		_ = lw.Teardown(tctx, false)
		return nil, err
	}
	if e.cfg.Mode == "shared" {
		s, err := e.share(ctx, c, spec)
		if err != nil {
			return fail(err)
		}
		w.ctr = s.ctr
		w.dir = path.Join(e.cfg.Workdir, spec.Job)
		w.tempDir = path.Join(tmpMount, spec.Job)
		w.user = e.imageUser(ctx, c)
		if err := w.handOver(ctx); err != nil {
			return fail(err)
		}
		return w, nil
	}
	ctr, err := e.create(ctx, c, spec, spec.Job, []mount{
		{host: lw.Dir(), ctr: e.cfg.Workdir}, {host: lw.TempDir(), ctr: tmpMount},
	})
	if err != nil {
		return fail(err)
	}
	w.ctr = ctr
	w.user = e.imageUser(ctx, c)
	if err := w.handOver(ctx); err != nil {
		return fail(err)
	}
	return w, nil
}

// share is the shared container of an executor.
type share struct {
	ctr *container
}

// share returns the shared container, creating it on first use.
func (e *Executor) share(ctx context.Context, c *cli, spec executors.JobSpec) (*share, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.shared != nil {
		return e.shared, nil
	}
	runDir, err := filepath.Abs(spec.RunDir)
	if err != nil {
		return nil, err
	}
	jobs, tmp := filepath.Join(runDir, "jobs"), filepath.Join(runDir, "tmp")
	mounts := []mount{{host: jobs, ctr: e.cfg.Workdir}, {host: tmp, ctr: tmpMount}}
	// The jobs that will join need their own store paths: mount the store.
	if fi, err := os.Stat("/nix/store"); err == nil && fi.IsDir() {
		mounts = append(mounts, mount{host: "/nix/store", ctr: "/nix/store", ro: true})
	}
	spec.StorePaths = nil
	name := e.name
	if name == "" {
		name = "shared"
	}
	ctr, err := e.create(ctx, c, spec, name, mounts)
	if err != nil {
		return nil, err
	}
	e.shared = &share{ctr: ctr}
	if e.cfg.User != "" {
		w := &workspace{cli: c, ctr: ctr, dir: e.cfg.Workdir, tempDir: tmpMount, user: e.cfg.User}
		if err := w.handOver(ctx); err != nil {
			return nil, err
		}
	}
	return e.shared, nil
}

// Close removes the shared container, if any, then whatever container of
// the run this process made is still there: the engine closes executors
// once every job is done, so any such container is one a runtime made
// after its client gave up (a Prepare cancelled during a create).
func (e *Executor) Close(ctx context.Context) (err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cli == nil {
		return e.host.Close(ctx)
	}
	// The host directories go last, once no container of the run is left.
	defer func() { err = errors.Join(err, e.host.Close(ctx)) }()
	var errs []error
	if s := e.shared; s != nil {
		e.shared = nil
		if err := e.cli.remove(ctx, s.ctr.id); err != nil {
			errs = append(errs, fmt.Errorf("remove shared container: %w", err))
		}
	}
	for runID := range e.runIDs {
		left, err := e.cli.containers(ctx, "label="+LabelRun+"="+runID,
			"label="+LabelOwnerPID+"="+strconv.Itoa(os.Getpid()), "label="+LabelHost+"="+hostname())
		if err != nil {
			errs = append(errs, fmt.Errorf("list the run's containers: %w", err))
			continue
		}
		if len(left) > 0 {
			e.log.Warn("removing containers the run left", "containers", left)
			if err := e.cli.remove(ctx, left...); err != nil {
				errs = append(errs, fmt.Errorf("remove the run's containers: %w", err))
			}
		}
	}
	// Every container is gone, or said not to be: the guard's work is
	// done. (A nixflow killed before this line leaves it to the guard.)
	e.guard.Stop()
	return errors.Join(errs...)
}

// create makes and starts a container for spec, mounting mounts, the
// closure of spec.StorePaths and the configured volumes.
func (e *Executor) create(ctx context.Context, c *cli, spec executors.JobSpec, job string, mounts []mount) (*container, error) {
	if err := checkVolumes(e.cfg.Volumes); err != nil {
		return nil, err
	}
	image := e.cfg.Image
	var closure []string
	if len(spec.StorePaths) > 0 {
		var err error
		if closure, err = storeClosure(ctx, spec.StorePaths); err != nil {
			return nil, err
		}
	}
	if image == "" {
		if len(spec.StorePaths) == 0 {
			return nil, errors.New("no image given and the steps have no Nix deps to assemble one from; hint: set image, or add deps that include bash (executors.oci { image = ...; })")
		}
		spec.Logf("assembling an image from the deps' closure")
		img, err := c.closureImage(ctx, spec.StorePaths, closure)
		if err != nil {
			return nil, err
		}
		image = img
	}
	// The store stays read-only, also where the image holds the closure.
	if !slices.ContainsFunc(mounts, func(m mount) bool { return m.ctr == "/nix/store" }) {
		for _, p := range closure {
			mounts = append(mounts, mount{host: p, ctr: p, ro: true})
		}
	}
	spec.Logf("starting a %s container from %s", c.name, image)
	ss := startSpec{
		image: image, runID: spec.RunID, job: job, user: e.cfg.User,
		mounts: mounts, volumes: e.cfg.Volumes, options: e.cfg.Options,
		guard: e.guard, guardToken: e.guardToken,
	}
	ctr, err := c.start(ctx, ss)
	if err != nil && imageMissing(err) {
		// Not on this machine: pull it, then start again.
		if perr := c.ensureImage(ctx, image, spec); perr != nil {
			return nil, perr
		}
		ctr, err = c.start(ctx, ss)
	}
	return ctr, err
}

// checkVolumes refuses a volume whose host path is not there: docker
// would make it, an empty directory of root's, and the job would run
// without what it was to see (podman refuses it, less clearly).
func checkVolumes(volumes []string) error {
	for _, v := range volumes {
		src, _, _ := strings.Cut(v, ":")
		if !strings.HasPrefix(src, "/") {
			continue // a named volume
		}
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("volume %q: %w; hint: create it on this machine, or fix the path", v, err)
		}
	}
	return nil
}
