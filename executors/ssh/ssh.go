// Package ssh is the executor that runs steps on remote hosts through the
// OpenSSH client binary, so that the user's ~/.ssh/config, agent,
// ProxyJump, certificates and known_hosts all apply. Nothing is installed
// on a host: it needs sshd, bash, tar and setsid (util-linux), and Nix
// (nix-store) when steps have Nix deps.
//
// # Connections
//
// Each host gets one master connection per run (ControlMaster, with the
// control socket in a private directory), opened by the first job that
// runs there; every step, copy and teardown is one more channel over it,
// not a new handshake. The master's own session is the run's anchor on
// the host: it creates the run's directory (mktemp -d under Target.Workdir,
// by default the remote $TMPDIR or /tmp), reports what the host has, and
// waits for its standard input to end. When it ends (the run is over,
// nixflow died, or the connection dropped) the anchor kills what is left
// of the run's steps and removes the run's directory, secrets included,
// but the workspaces kept with --keep-workspace.
//
// # Steps
//
// A step runs through a small runner (step.sh, written to the run's
// directory) that reads the step from the channel's standard input: the
// declared environment, PATH additions and argv travel there, never on a
// command line, so no value shows in the remote ps. The step runs in a
// session of its own (setsid) over the remote login environment; the
// runner records its process group id in the run's control directory, and
// the lines INT, TERM and KILL that nixflow writes to the channel signal
// that group, which is how the SIGINT/SIGTERM/SIGKILL escalation reaches
// the remote host (the OpenSSH client cannot send signals). When the
// channel's standard input ends before the step does (the client was
// killed, the connection dropped), the runner stops the step itself. When
// the step's shell exits, what is left in its process group is killed,
// and so are the processes that carry the step's NIXFLOW_STEP_COOKIE
// variable (escaped with setsid).
//
// # Files
//
// Workspaces, artifacts and the control files move as tar streams over
// the connection: modes, symbolic links and empty directories are kept;
// the local end reads and writes through os.Root, so that no path leads
// out of where it copies. With JobSpec.CopyRepo the workspace starts from
// the repository as git sees it (tracked and untracked files that are not
// ignored, with their uncommitted changes); it is not a git repository on
// the host.
//
// # Host pools
//
// An Executor serves one host or a pool of hosts. Prepare gives a job the
// least busy host that is up and has a free slot (Target.MaxJobs), waiting
// for one if needed. A host that cannot be reached, refuses the
// authentication or loses its connection is down for the rest of the run:
// jobs waiting for a slot go to the other hosts. A job that was running
// there lost its workspace: its Run, copies and Teardown fail at once,
// with an error for which errors.Is(err, executors.ErrWorkspaceLost)
// holds (the engine prepares the job again where the step has retry).
//
// # Other executors
//
// NewForTarget is the entry point for executors that make their hosts (the
// ec2 executor, once an instance boots): it returns an executor for one
// host, with the same workspaces and guarantees.
package ssh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"mvdan.cc/sh/v3/syntax"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
)

// Target is one host to run steps on, and how to reach it.
type Target struct {
	// Host is the host name or address, or a Host alias of ~/.ssh/config.
	Host string
	// User is the login name; empty leaves it to ssh (config, or the
	// local user).
	User string
	// Port is the port; zero leaves it to ssh.
	Port int
	// IdentityFile is a private key file, passed as -i.
	IdentityFile string
	// Options are passed to ssh as -o values, before nixflow's own
	// (the first value ssh obtains wins, so they override nixflow's
	// defaults: BatchMode=yes, ConnectTimeout=15, ServerAliveInterval=15).
	Options []string
	// Workdir is the remote directory the run's directory is made in;
	// empty means the remote $TMPDIR, or /tmp. A leading ~/ is the remote
	// home.
	Workdir string
	// NixCopy says when the closure of the steps' Nix deps is copied to the
	// host: "auto" (when there are deps; the host must have Nix), "always"
	// (the host must have Nix) or "never" (the paths must be there).
	// Empty means "auto".
	NixCopy string
	// MaxJobs caps the jobs running on the host at a time; zero means no
	// cap.
	MaxJobs int
}

// Where names the target as the summary shows it: user@host, or host.
func (t Target) Where() string {
	if t.User != "" {
		return t.User + "@" + t.Host
	}
	return t.Host
}

// manual is the ssh command that reaches the target as nixflow does,
// for hints: with its port and identity file.
func (t Target) manual() string {
	cmd := "ssh"
	if t.Port != 0 && t.Port != 22 {
		cmd += " -p " + strconv.Itoa(t.Port)
	}
	if t.IdentityFile != "" {
		cmd += " -i " + hintQuote(t.IdentityFile)
	}
	return cmd + " " + hintQuote(t.Where())
}

// hintQuote quotes a word of a command a hint shows, only where the shell
// needs it.
func hintQuote(s string) string {
	if q, err := syntax.Quote(s, syntax.LangBash); err == nil {
		return q
	}
	return shellQuote(s)
}

// knownHostsName is the target's name in known_hosts: [host]:port for a
// port other than 22.
func (t Target) knownHostsName() string {
	if t.Port != 0 && t.Port != 22 {
		return "[" + t.Host + "]:" + strconv.Itoa(t.Port)
	}
	return t.Host
}

func (t Target) validate() error {
	switch {
	case t.Host == "":
		return errors.New("empty host")
	case strings.HasPrefix(t.Host, "-") || strings.ContainsAny(t.Host, " \t\n\x00"):
		return fmt.Errorf("invalid host %q", t.Host)
	case strings.HasPrefix(t.User, "-") || strings.ContainsAny(t.User, " \t\n\x00"):
		return fmt.Errorf("invalid user %q", t.User)
	case t.Port < 0 || t.Port > 65535:
		return fmt.Errorf("invalid port %d", t.Port)
	case t.MaxJobs < 0:
		return fmt.Errorf("invalid maxJobs %d", t.MaxJobs)
	}
	switch t.NixCopy {
	case "", "auto", "always", "never":
	default:
		return fmt.Errorf("invalid nixCopy %q (known: auto, always, never)", t.NixCopy)
	}
	return nil
}

// Executor runs jobs on one host or a pool of hosts. Prepare is safe for
// concurrent use.
type Executor struct {
	hosts  []*host
	log    hclog.Logger
	runID  string
	runDir string
	sockTo string // the local directory of the control sockets

	mu sync.Mutex
	// changed is closed and replaced whenever a slot frees or a host goes
	// down, waking the Prepare calls that wait for a host.
	changed chan struct{}
	closed  bool
}

var _ executors.Executor = (*Executor)(nil)

// New returns the executor of a plan's ssh configuration
// (*compiler.SSHExecutor). It matches executors.Factory. It connects to
// nothing: connections open when the first job needs them.
func New(p executors.Params) (executors.Executor, error) {
	c, ok := p.Config.(*compiler.SSHExecutor)
	if !ok || c == nil {
		return nil, fmt.Errorf("ssh executor: unexpected configuration %T", p.Config)
	}
	var targets []Target
	base := Target{
		User: c.User, Port: c.Port, IdentityFile: c.IdentityFile, Options: c.Options,
		Workdir: c.Workdir, NixCopy: c.NixCopy, MaxJobs: c.MaxJobs,
	}
	if len(c.Hosts) == 0 {
		t := base
		t.Host = c.Host
		targets = append(targets, t)
	}
	for _, h := range c.Hosts {
		t := base
		t.Host = h.Host
		if h.User != "" {
			t.User = h.User
		}
		if h.Port != 0 {
			t.Port = h.Port
		}
		if h.IdentityFile != "" {
			t.IdentityFile = h.IdentityFile
		}
		t.MaxJobs = h.MaxJobs
		targets = append(targets, t)
	}
	return NewPool(targets, p)
}

// NewForTarget returns an executor that runs jobs on the one host t, for
// executors that make their hosts (ec2). p.Config is ignored; p.Environ is
// never used (remote steps do not inherit nixflow's environment). Like New
// it connects to nothing until the first Prepare; Close ends the
// connection and removes what the run put on the host.
func NewForTarget(t Target, p executors.Params) (executors.Executor, error) {
	return NewPool([]Target{t}, p)
}

// NewPool returns an executor that spreads jobs over the hosts of
// targets, as New does for a configuration with hosts.
func NewPool(targets []Target, p executors.Params) (*Executor, error) {
	if len(targets) == 0 {
		return nil, errors.New("ssh executor: no host")
	}
	log := p.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	e := &Executor{log: log, runID: p.RunID, runDir: p.RunDir, changed: make(chan struct{})}
	for _, t := range targets {
		if err := t.validate(); err != nil {
			return nil, fmt.Errorf("ssh executor: %w", err)
		}
		if t.NixCopy == "" {
			t.NixCopy = "auto"
		}
		e.hosts = append(e.hosts, &host{t: t, e: e, index: len(e.hosts), log: log.With("host", t.Where())})
	}
	return e, nil
}

// socketDir returns the private local directory of the control sockets,
// made on first use: in the run's directory (or the temporary directory,
// for a caller without one), removed by Close. ssh runs in it and names
// the sockets relative to it: a socket's path has a limit (104 bytes on
// macOS, 108 on Linux) that a deep directory would pass.
func (e *Executor) socketDir() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sockTo != "" {
		return e.sockTo, nil
	}
	base := e.runDir
	if base != "" {
		if err := os.MkdirAll(base, 0o755); err != nil {
			return "", fmt.Errorf("control socket directory: %w", err)
		}
	}
	dir, err := os.MkdirTemp(base, "ssh-")
	if err != nil {
		return "", fmt.Errorf("control socket directory: %w", err)
	}
	e.sockTo = dir
	return dir, nil
}

// acquire waits for a host with a free slot and takes the slot. It
// prefers the host with the fewest running jobs for its cap, then the one
// that got the fewest jobs. It fails when every
// host is down, or when ctx ends.
func (e *Executor) acquire(ctx context.Context) (*host, error) {
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, errors.New("executor closed")
		}
		var best *host
		var downs []error
		for _, h := range e.hosts {
			switch {
			case h.down != nil:
				downs = append(downs, h.down)
			case h.t.MaxJobs > 0 && h.running >= h.t.MaxJobs:
			case best == nil || h.load() < best.load() || (h.load() == best.load() && h.given < best.given):
				// Ties go to the host that got fewer jobs so far, so
				// that jobs one after the other spread too.
				best = h
			}
		}
		if best != nil {
			best.running++
			best.given++
			e.mu.Unlock()
			return best, nil
		}
		if len(downs) == len(e.hosts) {
			e.mu.Unlock()
			if len(downs) == 1 {
				return nil, downs[0]
			}
			return nil, fmt.Errorf("every host of the pool is down: %w", errors.Join(downs...))
		}
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// release gives a slot of h back.
func (e *Executor) release(h *host) {
	e.mu.Lock()
	h.running--
	e.broadcastLocked()
	e.mu.Unlock()
}

// markDown takes h out of the pool for the rest of the run.
func (e *Executor) markDown(h *host, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if h.down == nil {
		h.down = err
		e.log.Warn("host down", "host", h.t.Where(), "error", err)
		e.broadcastLocked()
	}
}

func (e *Executor) broadcastLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// Prepare takes a slot on a host, connects to it if this is the first job
// there, and makes the job's workspace: the repository copied when
// spec.CopyRepo is set, and the closure of spec.StorePaths copied with Nix
// as the host's nixCopy setting says.
func (e *Executor) Prepare(ctx context.Context, spec executors.JobSpec) (executors.Workspace, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("prepare ssh workspace: %w", err)
	}
	if !validJobName(spec.Job) {
		return nil, fmt.Errorf("prepare ssh workspace: invalid job name %q", spec.Job)
	}
	if spec.CopyRepo && spec.RepoDir == "" {
		return nil, errors.New("prepare ssh workspace: copying the repository needs a repository directory")
	}
	for {
		h, err := e.acquire(ctx)
		if err != nil {
			return nil, err
		}
		ws, err := h.prepare(ctx, spec)
		if err == nil {
			return ws, nil
		}
		e.release(h)
		var down *downError
		if errors.As(err, &down) && len(e.hosts) > 1 && ctx.Err() == nil {
			e.markDown(h, err)
			spec.Logf("host %s is down, trying another: %v", h.t.Where(), down.err)
			continue
		}
		return nil, err
	}
}

// Close ends every connection; each host's anchor removes what the run
// put there (but kept workspaces). It waits for that as long as ctx
// allows.
func (e *Executor) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.broadcastLocked()
	sock := e.sockTo
	e.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, h := range e.hosts {
		wg.Go(func() {
			if err := h.close(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if sock != "" {
		if err := os.RemoveAll(sock); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validJobName reports whether job can name a directory: one non-empty
// path element.
func validJobName(job string) bool {
	return job != "" && job != "." && job != ".." && !strings.ContainsAny(job, "/\x00\n")
}
