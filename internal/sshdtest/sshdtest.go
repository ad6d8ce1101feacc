// Package sshdtest starts real OpenSSH servers for tests: each on a
// loopback address of its own (127.0.0.N) and a free port, with a fresh
// host key, key authentication for the current user, a temporary
// configuration, and a PidFile by which it is stopped (never by name).
//
// The servers set HOME, for the sessions, to a directory of their own, so
// that a slow ~/.bashrc of the machine's user does not weigh on every
// step, and so that the tests' remote side is a clean slate.
//
// A server with Mounts runs in a mount namespace of its own (unshare -m),
// where its sessions see those mounts and the rest of the machine
// unchanged: a directory of the test over /nix is a host with a Nix store
// of its own, a small tmpfs is a host whose disk is full. Daemons (a
// nix-daemon, say) start in that namespace before sshd and stop with it.
package sshdtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sshd is the server binary.
const Sshd = "/usr/sbin/sshd"

// Available says whether sshd and the ssh client are installed, and why
// not.
func Available() (bool, string) {
	if _, err := os.Stat(Sshd); err != nil {
		return false, Sshd + " not installed (openssh-server)"
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		return false, "ssh not on PATH (openssh-client)"
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		return false, "ssh-keygen not on PATH (openssh-client)"
	}
	return true, ""
}

// Server is a running sshd.
type Server struct {
	// Addr and Port are where it listens.
	Addr string
	Port int
	// User is the login name (the current user) and Key the private key
	// that it accepts.
	User, Key string
	// Home is the sessions' HOME.
	Home string
	// Dir holds the server's files (keys, config, log, pid file).
	Dir string
	// Env is added to the sessions' environment (besides HOME) when the
	// server (re)starts: PATH=..., say. Values must not hold spaces.
	Env []string
	// Mounts, when not empty, are made in a mount namespace of the
	// server's own, in order, when the server (re)starts.
	Mounts []Mount
	// Daemons are started in the server's namespace before sshd, in the
	// background, and stopped with it (by their pids).
	Daemons []Daemon
}

// Daemon is a command run in the background of a server's namespace.
type Daemon struct {
	Argv []string
	// Ready, if set, is a path (in the namespace) that exists once the
	// daemon is ready: sshd starts then, or after 30 s at most.
	Ready string
}

// Mount is a mount in a server's namespace: Source bind-mounted on Target,
// or, without Source, a tmpfs of Size bytes (a number with an optional k,
// m or g suffix, as mount(8) takes it).
type Mount struct {
	Target, Source, Size string
}

// NamespacesAvailable says whether servers with Mounts can start here
// (they need root and unshare, from util-linux), and why not.
func NamespacesAvailable() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "a mount namespace needs root"
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return false, "unshare not on PATH (util-linux)"
	}
	return true, ""
}

// Options are the ssh client options that accept the server's fresh host
// key without a known_hosts file.
func (s *Server) Options() []string {
	return []string{"StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"}
}

// SSHArgs are ssh client arguments that log in to the server.
func (s *Server) SSHArgs() []string {
	args := []string{"-i", s.Key, "-p", strconv.Itoa(s.Port), "-l", s.User, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
	for _, o := range s.Options() {
		args = append(args, "-o", o)
	}
	return args
}

// Run runs a command on the server with the ssh client and returns its
// standard output.
func (s *Server) Run(command string) (string, error) {
	cmd := exec.Command("ssh", append(s.SSHArgs(), s.Addr, command)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("ssh %s %q: %w: %s", s.Addr, command, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Start starts a server with its files in dir (which must exist), on a
// random loopback address 127.0.0.N (N from 20 to 200, outside those
// other tests tend to use) and a random free port. A non-empty addr
// chooses the address.
func Start(dir, addr string) (*Server, error) {
	return StartAt(dir, addr, 0)
}

// StartAt is Start on the given port, if not zero (a random address is
// tried again when the port is taken there): several servers on one port
// and addresses of their own are hosts that differ by name alone. A key
// pair already in dir (id, id.pub) is the one the server accepts.
func StartAt(dir, addr string, port int) (*Server, error) {
	return StartWith(dir, Options{Addr: addr, Port: port})
}

// Options are the settings of a server that StartWith starts.
type Options struct {
	// Addr and Port are as for StartAt.
	Addr string
	Port int
	// Env, Mounts and Daemons are the Server's.
	Env     []string
	Mounts  []Mount
	Daemons []Daemon
}

// StartWith is StartAt with the server's environment, mounts and daemons
// set before it first starts.
func StartWith(dir string, o Options) (*Server, error) {
	addr, port := o.Addr, o.Port
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	s := &Server{User: u.Username, Dir: dir, Home: filepath.Join(dir, "home"), Key: filepath.Join(dir, "id"),
		Env: o.Env, Mounts: o.Mounts, Daemons: o.Daemons}
	if err := os.MkdirAll(s.Home, 0o755); err != nil {
		return nil, err
	}
	for _, k := range []string{"host_key", "id"} {
		p := filepath.Join(dir, k)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nixflow-test", "-f", p).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %w: %s", err, out)
		}
	}
	pub, err := os.ReadFile(s.Key + ".pub")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		return nil, err
	}
	// sshd needs its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	var lastErr error
	for range 20 {
		s.Addr = addr
		if s.Addr == "" {
			s.Addr = fmt.Sprintf("127.0.0.%d", 20+rand.IntN(181))
		}
		s.Port = port
		if port == 0 {
			s.Port = 20000 + rand.IntN(40000)
		}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

func (s *Server) pidFile() string { return filepath.Join(s.Dir, "sshd.pid") }

// start starts sshd on s.Addr and s.Port and waits until it accepts
// connections.
func (s *Server) start() error {
	config := fmt.Sprintf(`Port %d
ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 100
SetEnv HOME=%s %s
`, s.Port, s.Addr, filepath.Join(s.Dir, "host_key"), filepath.Join(s.Dir, "authorized_keys"), s.pidFile(), s.Home, strings.Join(s.Env, " "))
	cfg := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		return err
	}
	_ = os.Remove(s.pidFile())
	logFile := filepath.Join(s.Dir, "sshd.log")
	if out, err := s.command(cfg, logFile).CombinedOutput(); err != nil {
		_ = s.stopDaemons()
		return fmt.Errorf("sshd: %w: %s", err, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(s.Addr, strconv.Itoa(s.Port)), time.Second)
		if err == nil {
			conn.Close()
			if b, err := os.ReadFile(s.pidFile()); err == nil && strings.HasSuffix(string(b), "\n") {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(logFile)
	_ = s.Stop()
	return fmt.Errorf("sshd on %s:%d did not start: %s", s.Addr, s.Port, log)
}

// command is the command that starts sshd: at once, or in a namespace of
// its own after the mounts and daemons.
func (s *Server) command(cfg, logFile string) *exec.Cmd {
	sshd := []string{Sshd, "-f", cfg, "-E", logFile}
	if len(s.Mounts) == 0 && len(s.Daemons) == 0 {
		return exec.Command(sshd[0], sshd[1:]...)
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, m := range s.Mounts {
		if m.Source != "" {
			fmt.Fprintf(&script, "mount --bind %s %s\n", quote(m.Source), quote(m.Target))
		} else {
			fmt.Fprintf(&script, "mount -t tmpfs -o size=%s tmpfs %s\n", quote(m.Size), quote(m.Target))
		}
	}
	for i, d := range s.Daemons {
		var argv []string
		for _, a := range d.Argv {
			argv = append(argv, quote(a))
		}
		fmt.Fprintf(&script, "%s </dev/null >%s 2>&1 &\necho $! >%s\n", strings.Join(argv, " "),
			quote(filepath.Join(s.Dir, fmt.Sprintf("daemon%d.log", i))), quote(s.daemonPidFile(i)))
		if d.Ready != "" {
			fmt.Fprintf(&script, "i=0; until [ -e %s ] || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done\n", quote(d.Ready))
		}
	}
	script.WriteString("exec")
	for _, a := range sshd {
		script.WriteString(" " + quote(a))
	}
	// The namespace lives as long as a process in it: sshd, its sessions
	// and the daemons.
	return exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script.String())
}

func (s *Server) daemonPidFile(i int) string {
	return filepath.Join(s.Dir, fmt.Sprintf("daemon%d.pid", i))
}

func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Stop stops the server by the pid in its PidFile, and waits for it to
// be gone, then its daemons. Sessions still open are not ended: each has
// a process of its own.
func (s *Server) Stop() error {
	err := stopByPidFile(s.pidFile(), "sshd")
	return errors.Join(err, s.stopDaemons())
}

func (s *Server) stopDaemons() error {
	var errs []error
	for i := range s.Daemons {
		errs = append(errs, stopByPidFile(s.daemonPidFile(i), s.Daemons[i].Argv[0]))
	}
	return errors.Join(errs...)
}

// stopByPidFile sends SIGTERM to the process whose pid is in file, waits
// for it to be gone, and removes the file.
func stopByPidFile(file, what string) error {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("bad pid file %s: %q", file, b)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	for range 250 {
		if !alive(pid) {
			// sshd removes its own.
			if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s %d did not stop", what, pid)
}

// alive reports whether pid runs: a zombie does not (sshd daemonizes, and
// nothing may reap it where the tests run).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// Restart starts the server again where it was, after Stop.
func (s *Server) Restart() error {
	return s.start()
}

// Kill takes the server down as a host that goes down would: it stops the
// server and kills the processes that hold its connections (found by
// their sockets with ss, from iproute2), so that every session ends.
func (s *Server) Kill() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return KillSessions(s.Addr, s.Port)
}

// KillSessions kills the server side of every connection established to
// addr:port (found with ss), as a machine that dies takes its sessions
// with it: a stopped sshd leaves them running.
func KillSessions(addr string, port int) error {
	_, err := SignalSessions(addr, port, syscall.SIGKILL)
	return err
}

// SignalSessions sends sig to the server side of every connection
// established to addr:port: SIGSTOP makes a connection hang as a network
// partition would (SIGCONT ends that). It returns how many processes
// it signalled.
func SignalSessions(addr string, port int, sig syscall.Signal) (int, error) {
	// Every state: a connection whose client is gone waits in
	// close-wait for its stopped server side.
	out, err := exec.Command("ss", "-Htnp", "state", "connected", "src", net.JoinHostPort(addr, strconv.Itoa(port))).Output()
	if err != nil {
		return 0, fmt.Errorf("ss: %w", err)
	}
	n := 0
	for _, f := range strings.Fields(string(out)) {
		for _, part := range strings.Split(f, ",") {
			if v, ok := strings.CutPrefix(part, "pid="); ok {
				if pid, err := strconv.Atoi(v); err == nil && pid > 1 {
					_ = syscall.Kill(pid, sig)
					n++
				}
			}
		}
	}
	return n, nil
}

// NixHost returns the options of a host with a Nix store of its own,
// empty, made under dir (which must exist): dir/nix over /nix. An
// untrusting host keeps its store behind a nix-daemon (started in its
// namespace, with dir/etc-nix over /etc/nix) whose trusted-users leave the
// login user out, as a multi-user install does for an ordinary user: it
// refuses unsigned paths from them.
func NixHost(dir string, untrusting bool) (Options, error) {
	store := filepath.Join(dir, "nix")
	if err := os.Mkdir(store, 0o755); err != nil {
		return Options{}, err
	}
	o := Options{Mounts: []Mount{{Source: store, Target: "/nix"}}}
	if !untrusting {
		return o, nil
	}
	daemon, err := exec.LookPath("nix-daemon")
	if err != nil {
		return Options{}, err
	}
	etc := filepath.Join(dir, "etc-nix")
	if err := os.Mkdir(etc, 0o755); err != nil {
		return Options{}, err
	}
	conf := "sandbox = false\ntrusted-users = nobody\nallowed-users = *\nrequire-sigs = true\n"
	if err := os.WriteFile(filepath.Join(etc, "nix.conf"), []byte(conf), 0o644); err != nil {
		return Options{}, err
	}
	o.Mounts = append(o.Mounts, Mount{Source: etc, Target: "/etc/nix"})
	o.Env = []string{"NIX_REMOTE=daemon"}
	o.Daemons = []Daemon{{Argv: []string{daemon}, Ready: "/nix/var/nix/daemon-socket/socket"}}
	return o, nil
}
