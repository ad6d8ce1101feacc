package ssh

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/internal/procsh"
)

//go:embed anchor.sh
var anchorScript string

//go:embed step.sh
var stepSh string

// stepScript is the step runner: step.sh, with the functions it shares
// with the compiled script at its procshMark.
var stepScript = func() string {
	if !strings.Contains(stepSh, procshMark) {
		panic("step.sh has no " + procshMark)
	}
	return strings.Replace(stepSh, procshMark, procsh.Bash, 1)
}()

const procshMark = "# @procsh: internal/procsh's functions (nf_settle, nf_thread_env, ...) here.\n"

// sshProgram is the OpenSSH client.
const sshProgram = "ssh"

// maxChannels is the most sessions nixflow opens over a master connection
// at a time: sshd's MaxSessions is 10 by default, the anchor's session is
// one, and sshd may still count a session whose client has just exited.
// More steps or copies wait for a channel. (Should sshd refuse one all the
// same, ssh falls back to a connection of its own: slower, not wrong.)
const maxChannels = 8

// connectTimeout bounds the wait for a master connection to be ready,
// beyond ssh's own ConnectTimeout, should the remote side hang.
const connectTimeout = 2 * time.Minute

// host is one target and its connection for the run.
type host struct {
	t     Target
	e     *Executor
	index int // in the pool: names its control socket
	log   hclog.Logger

	// Guarded by e.mu.
	running int
	given   int // jobs given to the host so far
	down    error

	connMu sync.Mutex
	conn   *conn
	// connErr is the error of the first connection attempt that failed
	// for good (a host down); later Prepare calls get it at once.
	connErr error
}

// load is the share of its cap that h runs (running jobs without a cap).
func (h *host) load() float64 {
	if h.t.MaxJobs > 0 {
		return float64(h.running) / float64(h.t.MaxJobs)
	}
	return float64(h.running)
}

// downError marks a failure that takes a host out of the pool: it cannot
// be reached, refuses us, or lost its connection (lost: the workspaces
// there are gone, executors.ErrWorkspaceLost).
type downError struct {
	where string
	err   error
	hint  string
	lost  bool
}

func (e *downError) Error() string {
	msg := fmt.Sprintf("host %s: %v", e.where, e.err)
	if e.hint != "" {
		msg += "\nhint: " + e.hint
	}
	return msg
}

func (e *downError) Unwrap() error { return e.err }

func (e *downError) Is(target error) bool { return e.lost && target == executors.ErrWorkspaceLost }

// conn is a master connection and what the anchor reported.
type conn struct {
	h *host
	// dir is the directory ssh runs in, and sock the control socket's
	// path relative to it.
	dir    string
	sock   string
	master *exec.Cmd
	stdin  io.WriteCloser
	// exited is closed when the master process has exited.
	exited  chan struct{}
	waitErr error
	stderr  *tailBuffer

	// channels holds a token per session open over the connection.
	channels chan struct{}
	// hung is set when nixflow ended the connection because the host
	// stopped answering (abandon).
	hung atomic.Bool
	// live cancels each session client running (command), so that
	// abandon ends them with the master: a client whose master dies
	// would connect on its own, and hang with the host.
	liveMu sync.Mutex
	live   map[int]context.CancelFunc
	nextID int
	dead   bool

	run                          string // the run's directory on the host
	hasTar, hasSetsid, hasNix, _ bool
}

// args are the ssh options of every connection to the target, the
// user's first; level is ssh's LogLevel unless the user's options set it.
func (h *host) args(sock, level string) []string {
	var a []string
	for _, o := range h.t.Options {
		a = append(a, "-o", o)
	}
	if h.t.Port != 0 {
		a = append(a, "-p", strconv.Itoa(h.t.Port))
	}
	if h.t.User != "" {
		a = append(a, "-l", h.t.User)
	}
	if h.t.IdentityFile != "" {
		a = append(a, "-i", h.t.IdentityFile)
	}
	return append(a,
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=15",
		"-o", "ServerAliveInterval=15",
		"-o", "ServerAliveCountMax=4",
		"-o", "LogLevel="+level,
		"-o", "ControlPath="+sock,
		"-T",
	)
}

// clientEnv is the environment of the ssh client: nixflow's own (for the
// agent, HOME and the user's config), without the locale variables that
// Debian's ssh_config sends to the host (SendEnv LANG LC_*): no variable
// of this machine reaches a remote step but those declared.
func clientEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LANG=") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANGUAGE=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// connect returns the host's connection, opening it on first use. A
// failure that takes the host down is remembered: later calls get it
// at once.
func (h *host) connect(ctx context.Context, spec func(string, ...any)) (*conn, error) {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	if h.connErr != nil {
		return nil, h.connErr
	}
	if h.conn != nil {
		select {
		case <-h.conn.exited:
			// A single host is connected to again for the next job (a
			// network that dropped for a moment); a host of a pool stays
			// down, and the others take its jobs. A host that then does
			// not answer is remembered as down.
			if len(h.e.hosts) > 1 {
				err := h.conn.lostError()
				h.connErr = err
				return nil, err
			}
			h.e.log.Info("connecting again", "host", h.t.Where(), "after", h.conn.lostError())
			h.conn = nil
		default:
			return h.conn, nil
		}
	}
	spec("connecting to %s", h.t.Where())
	c, err := h.dial(ctx)
	if err != nil {
		var down *downError
		if errors.As(err, &down) {
			h.connErr = err
		}
		return nil, err
	}
	h.conn = c
	go func() {
		<-c.exited
		h.connMu.Lock()
		closing := h.conn == nil
		h.connMu.Unlock()
		if !closing && len(h.e.hosts) > 1 {
			h.e.markDown(h, c.lostError())
		}
	}()
	return c, nil
}

// dial starts the master connection and waits for the anchor's report.
func (h *host) dial(ctx context.Context) (*conn, error) {
	dir, err := h.e.socketDir()
	if err != nil {
		return nil, err
	}
	// A master that was killed (a hung connection abandoned) leaves its
	// socket: ssh would then not listen there, and every command after
	// would open a connection of its own.
	sock := "./" + strconv.Itoa(h.index)
	_ = os.Remove(filepath.Join(dir, sock))
	c := &conn{h: h, dir: dir, sock: sock, exited: make(chan struct{}),
		stderr: &tailBuffer{max: 4096}, channels: make(chan struct{}, maxChannels)}
	args := append(h.args(c.sock, "ERROR"), "-o", "ControlMaster=yes", "-o", "ControlPersist=no", h.t.Host,
		`exec bash --noprofile --norc -c 'IFS= read -r -d "" s && eval "$s"'`)
	cmd := executors.OwnGroup(exec.Command(sshProgram, args...))
	cmd.Env = clientEnv()
	cmd.Dir = c.dir
	cmd.Stderr = c.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("the OpenSSH client (ssh) is not on PATH: %w\nhint: install it (Debian: apt-get install openssh-client)", err)
		}
		return nil, fmt.Errorf("start ssh: %w", err)
	}
	c.master, c.stdin = cmd, stdin
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	go func() {
		// The bootstrap: the anchor, then its two inputs.
		_, _ = io.WriteString(stdin, anchorScript+"\x00"+h.t.Workdir+"\x00"+stepScript+"\x00")
	}()

	type report struct {
		lines []string
		err   error
	}
	rc := make(chan report, 1)
	go func() {
		r := bufio.NewReader(stdout)
		var lines, chatter []string
		for len(lines) < 3 {
			line, err := r.ReadString('\n')
			if err != nil {
				if len(lines) == 0 {
					// What the login printed instead: it may say why
					// (dialError).
					lines = append(chatter, strings.TrimSuffix(line, "\n"))
				}
				rc <- report{lines, err}
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case len(lines) > 0:
				lines = append(lines, line)
			case line == "nixflow-ready":
				lines = append(lines, line)
			case strings.HasPrefix(line, "nixflow-error "):
				rc <- report{[]string{line}, errors.New("anchor failed")}
				return
			}
			// Anything else before the report is a login script's chatter
			// (the last lines kept).
			if len(lines) == 0 {
				chatter = append(chatter[max(0, len(chatter)-4):], line)
			}
		}
		rc <- report{lines, nil}
		_, _ = io.Copy(io.Discard, r)
	}()
	timer := time.NewTimer(connectTimeout)
	defer timer.Stop()
	var rep report
	select {
	case rep = <-rc:
	case <-ctx.Done():
		c.kill()
		return nil, fmt.Errorf("connect to %s: %w", h.t.Where(), ctx.Err())
	case <-timer.C:
		c.kill()
		return nil, &downError{where: h.t.Where(), err: fmt.Errorf("no answer after %v", connectTimeout),
			hint: "check that the host is up and that sshd answers: " + h.t.manual() + " true"}
	}
	if rep.err != nil {
		c.kill()
		<-c.exited
		return nil, h.dialError(rep.lines, c.stderr.String())
	}
	c.run = rep.lines[1]
	fields := strings.Fields(rep.lines[2])
	if len(fields) < 5 {
		c.kill()
		return nil, fmt.Errorf("host %s: unexpected report %q", h.t.Where(), rep.lines[2])
	}
	c.hasTar, c.hasSetsid, c.hasNix = fields[0] == "1", fields[1] == "1", fields[2] == "1"
	if err := checkBash(fields[4]); err != nil {
		c.close(context.Background())
		return nil, &downError{where: h.t.Where(), err: err,
			hint: "the step runner needs bash 4.4 or later (mapfile -d, empty arrays under set -u): upgrade bash on the host"}
	}
	var missing []string
	if !c.hasTar {
		missing = append(missing, "tar")
	}
	if !c.hasSetsid {
		missing = append(missing, "setsid (util-linux)")
	}
	if len(missing) > 0 {
		c.close(context.Background())
		return nil, &downError{where: h.t.Where(), err: fmt.Errorf("%s not installed", strings.Join(missing, " and ")),
			hint: "install them on the host (Debian: apt-get install tar util-linux)"}
	}
	h.log.Debug("connected", "run_dir", c.run)
	return c, nil
}

// checkBash says whether the host's bash, as the anchor reported it
// (BASH_VERSINFO's major.minor), can run the step runner: 4.4 or later.
// Older, the runner's search for escaped processes would find nothing.
func checkBash(version string) error {
	major, minor, ok := strings.Cut(version, ".")
	x, err1 := strconv.Atoi(major)
	y, err2 := strconv.Atoi(minor)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("cannot tell the version of bash (%q)", version)
	}
	if x < 4 || (x == 4 && y < 4) {
		return fmt.Errorf("bash %s is older than 4.4", version)
	}
	return nil
}

// dialError explains why the master connection failed, from what the
// anchor printed and ssh's standard error.
func (h *host) dialError(lines []string, stderr string) error {
	where := h.t.Where()
	msg := strings.TrimSpace(stderr)
	if len(lines) > 0 && strings.HasPrefix(lines[0], "nixflow-error ") {
		return &downError{where: where, err: errors.New(strings.TrimPrefix(lines[0], "nixflow-error ")),
			hint: "check the remote directory (workdir) and the free space on the host"}
	}
	last := msg
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		last = strings.TrimSpace(msg[i+1:])
	}
	d := &downError{where: where, err: errors.New(last)}
	if last == "" {
		d.err = errors.New("the connection ended before the host answered")
		// What the login printed, taken for chatter so far, may say why
		// (nologin: "This account is currently not available.").
		for i := len(lines) - 1; i >= 0 && lines[0] != "nixflow-ready"; i-- {
			if l := strings.TrimSpace(lines[i]); l != "" {
				d.err = fmt.Errorf("the connection ended before the host answered; the login printed: %s", l)
				d.hint = "check the user's login shell on the host: it must run commands (not nologin)"
				return d
			}
		}
	}
	manual := h.t.manual()
	switch {
	case strings.Contains(msg, "REMOTE HOST IDENTIFICATION HAS CHANGED"):
		d.err = errors.New("host key verification failed: the host's key changed")
		d.hint = "the key differs from the one known_hosts holds for " + h.t.knownHostsName() + ": someone may be in the middle, or the host was reinstalled; check the key with its owner, then replace it (ssh-keygen -R '" + h.t.knownHostsName() + "'; " + manual + ")"
	case strings.Contains(msg, "Host key verification failed"):
		d.err = errors.New("host key verification failed")
		d.hint = "known_hosts holds no key for " + h.t.knownHostsName() + ": check the host's key, then record it (" + manual + ")"
	case strings.Contains(msg, "bash: Permission denied"):
		// (Before ssh's refusal, "Permission denied (publickey)": the
		// login shell could not run bash.)
		d.err = errors.New("bash cannot be run: " + last)
		d.hint = "steps run with bash: check its permissions on the host"
	case strings.Contains(msg, "Permission denied"), strings.Contains(msg, "Too many authentication failures"):
		d.hint = "the host refused every key: check user, identityFile and your agent (" + strings.Replace(manual, "ssh ", "ssh -v ", 1) + ")"
	case strings.Contains(msg, "Connection refused"), strings.Contains(msg, "timed out"),
		strings.Contains(msg, "No route to host"), strings.Contains(msg, "Network is unreachable"),
		strings.Contains(msg, "Could not resolve"), strings.Contains(msg, "Name or service not known"):
		d.hint = "check the host name, port and that sshd runs there (" + manual + " true)"
	case strings.Contains(msg, "bash") && (strings.Contains(msg, "not found") || strings.Contains(msg, "No such file")):
		d.err = errors.New("bash is not installed")
		d.hint = "steps run with bash: install it on the host"
	default:
		d.hint = "try " + manual + " true"
	}
	return d
}

// lostError is the error of a connection that ended during the run.
func (c *conn) lostError() error {
	msg := strings.TrimSpace(c.stderr.String())
	if c.hung.Load() {
		msg = fmt.Sprintf("the host stopped answering (a command got no answer in %v)", pingTimeout)
	}
	if msg == "" && c.waitErr != nil {
		msg = c.waitErr.Error()
	}
	if msg == "" {
		msg = "the connection ended"
	}
	return &downError{where: c.h.t.Where(), err: fmt.Errorf("connection lost: %s", msg), lost: true,
		hint: "the host went down or the network dropped: the jobs that were running there failed (or start again on another host of the pool, where the step has retry), the others go elsewhere"}
}

// pingTimeout bounds the answer to ping.
const pingTimeout = 5 * time.Second

// ping runs a command that does nothing on the host, and fails when the
// host does not answer within pingTimeout.
func (c *conn) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	if err := c.acquire(ctx); err != nil {
		// Every channel taken for as long: the host is busy, not
		// (as far as this tells) gone.
		return fmt.Errorf("%w: %w", errBusy, err)
	}
	defer c.release()
	cmd, done := c.command(ctx, "true")
	defer done()
	// A client killed at the deadline has nothing to say.
	cmd.WaitDelay = 100 * time.Millisecond
	return cmd.Run()
}

// errBusy is a ping that found no free channel to ask on.
var errBusy = errors.New("every channel of the connection is in use")

// abandon ends a connection that hangs: its master at once, so that
// whatever waits on it fails as lost.
func (c *conn) abandon() {
	c.hung.Store(true)
	c.liveMu.Lock()
	c.dead = true
	for _, cancel := range c.live {
		cancel()
	}
	c.liveMu.Unlock()
	c.kill()
	<-c.exited
}

// kill ends the master process at once.
func (c *conn) kill() {
	if c.master != nil && c.master.Process != nil {
		_ = c.master.Process.Kill()
	}
}

// close ends the anchor's input, so that it cleans up and exits, and waits
// for the master to exit, as long as ctx allows.
func (c *conn) close(ctx context.Context) error {
	_ = c.stdin.Close()
	select {
	case <-c.exited:
	case <-ctx.Done():
		c.kill()
		<-c.exited
		return fmt.Errorf("host %s: closing the connection: %w", c.h.t.Where(), ctx.Err())
	}
	var exit *exec.ExitError
	if c.waitErr != nil && !errors.As(c.waitErr, &exit) {
		return fmt.Errorf("host %s: %w", c.h.t.Where(), c.waitErr)
	}
	if exit != nil {
		return fmt.Errorf("host %s: cleaning up the run directory %s failed: %s", c.h.t.Where(), c.run, strings.TrimSpace(c.stderr.String()))
	}
	return nil
}

// close ends the host's connection, if any.
func (h *host) close(ctx context.Context) error {
	h.connMu.Lock()
	c := h.conn
	h.conn = nil
	h.connMu.Unlock()
	if c == nil {
		return nil
	}
	select {
	case <-c.exited:
		return nil // lost earlier: reported then
	default:
	}
	return c.close(ctx)
}

// command returns an ssh command running remote (a command line for the
// remote login shell) over the master connection, and the function to
// call once it has been waited for. abandon stops it.
func (c *conn) command(ctx context.Context, remote string) (*exec.Cmd, func()) {
	ctx, cancel := context.WithCancel(ctx)
	c.liveMu.Lock()
	id := c.nextID
	c.nextID++
	if c.dead {
		cancel()
	} else {
		if c.live == nil {
			c.live = map[int]context.CancelFunc{}
		}
		c.live[id] = cancel
	}
	c.liveMu.Unlock()
	done := func() {
		c.liveMu.Lock()
		delete(c.live, id)
		c.liveMu.Unlock()
		cancel()
	}
	// QUIET: a client's own messages (a refused session it works around)
	// would land in a step's output; the master's state says what failed.
	args := append(c.h.args(c.sock, "QUIET"), "-o", "ControlMaster=no", c.h.t.Host, remote)
	cmd := executors.OwnGroupContext(exec.CommandContext(ctx, sshProgram, args...))
	cmd.Env = clientEnv()
	cmd.Dir = c.dir
	return cmd, done
}

// script runs a bash script on the host, with args as $1..., stdin as its standard
// input, and returns its standard output. A failure carries the script's
// standard error; ssh's exit status 255 is a connection failure.
func (c *conn) script(ctx context.Context, script string, args []string, stdin io.Reader, stdout io.Writer) error {
	if err := c.acquire(ctx); err != nil {
		return err
	}
	defer c.release()
	if isLost(c) {
		// Without its master, ssh would try a connection of its own.
		return c.lostError()
	}
	remote := "exec bash --noprofile --norc -c " + shellQuote(script) + " nixflow"
	for _, a := range args {
		remote += " " + shellQuote(a)
	}
	cmd, done := c.command(ctx, remote)
	defer done()
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if c.hung.Load() {
		return c.lostError() // abandoned while it ran
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		msg := strings.TrimSpace(stderr.String())
		if exit.ExitCode() == 255 {
			return c.connectionError(msg)
		}
		return &scriptError{code: exit.ExitCode(), msg: msg}
	}
	return err
}

// acquire takes a channel of the connection, waiting for one as long as
// ctx allows.
func (c *conn) acquire(ctx context.Context) error {
	select {
	case c.channels <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *conn) release() { <-c.channels }

// connectionError is the error of an ssh command that failed with status
// 255: the connection is lost if the master is gone.
func (c *conn) connectionError(msg string) error {
	// A master that lost its connection fails its clients a moment
	// before it exits itself: give it that moment.
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-c.exited:
		return c.lostError()
	case <-t.C:
	}
	if msg == "" {
		msg = "ssh failed"
	}
	return fmt.Errorf("host %s: %s", c.h.t.Where(), msg)
}

// scriptError is a remote script's failure.
type scriptError struct {
	code int
	msg  string
}

func (e *scriptError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.msg
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.ToValidUTF8(t.buf, nil))
}
