// Package ec2 is the executor that runs jobs on ephemeral EC2 instances.
//
// Prepare launches an instance (one per job, or one per executor and run in
// shared mode) with an ephemeral SSH key delivered in its user data, a
// shutdown timer that ends it after maxLifetime whatever happens to
// nixflow, shutdown-means-terminate, and nixflow's tags set at launch; it
// waits for the instance to run and for SSH to answer, then hands the job
// to the SSH executor, so that steps run exactly as on any SSH host.
// Teardown (or Close, in shared mode) terminates the instance, on every
// path: success, failure, timeout, cancellation during launch, boot or a
// step, and panics, with a fresh context and retries. The instance id is
// recorded in the run directory the moment RunInstances returns, and
// `nixflow ec2 reap` finds by tag whatever a killed nixflow left.
//
// A machine given as a raw disk image in the Nix store is uploaded with
// the EBS direct APIs, registered as an AMI and tagged with the image's
// store path hash, so that later runs reuse it (see EnsureImage).
package ec2

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/ssh"
	"github.com/nixflow/nixflow/executors/watchdog"
	"github.com/nixflow/nixflow/timing"
)

// Connect makes the executor that runs jobs on a launched instance: the
// SSH executor, for the instance's address, user, key and known_hosts.
type Connect func(t ssh.Target, p executors.Params) (executors.Executor, error)

// Options tune an Executor; the zero value is the production setting.
type Options struct {
	// Connect makes the executor that runs jobs on an instance; nil is the
	// SSH executor.
	Connect Connect
	// SSHTimeout bounds the wait for SSH to answer on a running instance
	// (default 5 minutes).
	SSHTimeout time.Duration
	// BootTimeout bounds the wait for the instance to run (default 10
	// minutes).
	BootTimeout time.Duration
	// StatePoll is how often the wait for SSH looks whether the instance
	// still runs (default 10 seconds).
	StatePoll time.Duration
	// Backoff is the pause before retry n (from 1) of a launch that found
	// no capacity, or a termination that failed (default 2^n seconds).
	Backoff func(n int) time.Duration
	// Clients, when set, are used instead of clients from the standard
	// configuration chain.
	Clients *Clients
}

// Executor launches EC2 instances for the jobs of one executor
// configuration of a run.
type Executor struct {
	cfg  compiler.EC2Executor
	p    executors.Params
	log  hclog.Logger
	opts Options

	mu      sync.Mutex
	clients *Clients
	// amiMu guards ami, the image made from the machine.
	amiMu sync.Mutex
	ami   string
	// shared is the instance of shared mode, once launched.
	shared *sharedInstance
	// guard terminates the instances if nixflow is killed (guard.go);
	// nil: none.
	guardOnce sync.Once
	guard     *watchdog.Guard
}

var _ executors.Executor = (*Executor)(nil)

// New is the ec2 executors.Factory.
func New(p executors.Params) (executors.Executor, error) {
	return NewWithOptions(p, Options{})
}

// NewWithOptions is New with tuning, for tests.
func NewWithOptions(p executors.Params, o Options) (*Executor, error) {
	cfg, ok := p.Config.(*compiler.EC2Executor)
	if !ok || cfg == nil {
		return nil, fmt.Errorf("ec2 executor: configuration %T, want *compiler.EC2Executor", p.Config)
	}
	if o.Connect == nil {
		o.Connect = ssh.NewForTarget
	}
	if o.SSHTimeout == 0 {
		o.SSHTimeout = 5 * time.Minute
	}
	if o.StatePoll == 0 {
		o.StatePoll = 10 * time.Second
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = 10 * time.Minute
	}
	if o.Backoff == nil {
		o.Backoff = func(n int) time.Duration { return time.Duration(1<<min(n, 5)) * time.Second }
	}
	c := *cfg
	if c.SSHPort == 0 {
		c.SSHPort = 22
	}
	if c.MaxLifetime <= 0 {
		c.MaxLifetime = timing.Duration(2 * time.Hour)
	}
	if c.Mode == "" {
		c.Mode = "isolated"
	}
	log := p.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Executor{cfg: c, p: p, log: log, opts: o, clients: o.Clients}, nil
}

// awsClients returns the clients, made on first use.
func (x *Executor) awsClients(ctx context.Context) (*Clients, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.clients != nil {
		return x.clients, nil
	}
	c, err := NewClients(ctx, x.cfg.Region, x.cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	x.clients = c
	return c, nil
}

// Prepare launches the job's instance (or, in shared mode, the executor's
// instance on first use) and prepares the job's workspace on it.
func (x *Executor) Prepare(ctx context.Context, spec executors.JobSpec) (executors.Workspace, error) {
	if x.cfg.Mode == "shared" {
		return x.prepareShared(ctx, spec)
	}
	inst, err := x.launch(ctx, spec, spec.Job)
	if err != nil {
		return nil, err
	}
	ok := false
	// Also on a panic below: the instance never outlives a failed Prepare.
	defer func() {
		if !ok {
			inst.close(spec.Logf)
		}
	}()
	ws, err := inst.inner.Prepare(ctx, spec)
	if err != nil {
		return nil, err
	}
	ok = true
	return &workspace{Workspace: ws, inst: inst, log: spec.Logf}, nil
}

// sharedInstance is the one instance of a shared executor.
type sharedInstance struct {
	inst *instance
	err  error
}

func (x *Executor) prepareShared(ctx context.Context, spec executors.JobSpec) (executors.Workspace, error) {
	inst, err := x.sharedLaunch(ctx, spec)
	if err != nil {
		return nil, err
	}
	ws, err := inst.inner.Prepare(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &workspace{Workspace: ws, where: inst.where()}, nil
}

// sharedLaunch launches the shared instance once. A launch stopped by its
// job's cancellation is not remembered: the next job tries again.
func (x *Executor) sharedLaunch(ctx context.Context, spec executors.JobSpec) (*instance, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.shared != nil {
		return x.shared.inst, x.shared.err
	}
	label := x.p.Name
	if label == "" {
		label = "shared"
	}
	// x.mu is held: the clients are made here, not by awsClients.
	if x.clients == nil {
		c, err := NewClients(ctx, x.cfg.Region, x.cfg.Endpoint)
		if err != nil {
			return nil, err
		}
		x.clients = c
	}
	inst, err := x.start(ctx, x.clients, spec, label)
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	x.shared = &sharedInstance{inst: inst, err: err}
	return inst, err
}

// Close terminates the shared instance, if one was launched.
func (x *Executor) Close(ctx context.Context) error {
	x.mu.Lock()
	s := x.shared
	x.mu.Unlock()
	var err error
	if s != nil && s.inst != nil {
		err = s.inst.close(nil)
	}
	// Every job's instance was terminated at its teardown: what the
	// guard would terminate is what nixflow could not, and said so.
	x.stopGuard()
	return err
}

// workspace is the SSH executor's workspace on an instance; in isolated
// mode its Teardown also terminates the instance.
type workspace struct {
	executors.Workspace
	inst  *instance // nil in shared mode
	where string
	log   func(string, ...any)
}

// Ping asks the instance's SSH workspace (see executors.Pinger).
func (w *workspace) Ping() error {
	if p, ok := w.Workspace.(executors.Pinger); ok {
		return p.Ping()
	}
	return nil
}

func (w *workspace) Where() string {
	if w.inst != nil {
		return w.inst.where()
	}
	return w.where
}

// Teardown tears the job's workspace down and, in isolated mode,
// terminates the instance, also when the workspace's teardown failed.
// Keeping the workspace is not possible on an instance that ends with the
// job: keep is passed on, and the instance terminated all the same.
func (w *workspace) Teardown(ctx context.Context, _ bool) error {
	// Nothing is kept: the instance is terminated (isolated mode, now;
	// shared mode, at the end of the run), its workspace with it
	// (docs/ec2.md). A workspace kept there would only be said to be.
	err := w.Workspace.Teardown(ctx, false)
	if w.inst != nil {
		err = errors.Join(err, w.inst.close(w.log))
	}
	return err
}
