//go:build linux

package local

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Where cgroup v2 lets nixflow make cgroups below its own (as root, or in
// a delegated subtree), each step runs in a cgroup of its own, created
// before the step starts and entered at clone time: every process the
// step starts stays in it, whatever it does to its process group, its
// session or its environment (a daemon that rewrites its environment, as
// nginx, postgres or sshd do, escapes the cookie scan, not its cgroup).
// After the step, what is left in the cgroup is killed and the cgroup
// removed. Elsewhere (no cgroup v2, not writable, controllers enabled
// below nixflow's cgroup) steps run as before: process group and cookie.

// stepCgroup is the cgroup of one step; nil when there is none.
type stepCgroup struct {
	dir string
	fd  int
	// empty records that kill found the cgroup without a process, and
	// killed none: it may serve the executor's next step. gone records
	// that kill found it empty, after killing or not.
	empty, gone bool
}

// ownCgroup returns the directory of nixflow's cgroup v2, if there is
// one nixflow may make cgroups in.
func ownCgroup() (string, bool) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", false
	}
	var rel string
	found := false
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel, found = p, true
		}
	}
	if !found {
		return "", false
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	sc := bufio.NewScanner(bytes.NewReader(mounts))
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source superoptions
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" || len(fields) < 5 {
			continue
		}
		root, mnt := fields[3], fields[4]
		sub, ok := strings.CutPrefix(rel, root)
		if !ok {
			continue
		}
		dir := filepath.Join(mnt, sub)
		// Processes may be moved into a child only when nixflow may write
		// its own cgroup's procs and no controller is enabled below it
		// (cgroup v2 keeps processes out of inner nodes that have some).
		if syscall.Access(filepath.Join(dir, "cgroup.procs"), 2) != nil {
			return "", false
		}
		if ctl, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); err != nil || len(bytes.TrimSpace(ctl)) > 0 {
			return "", false
		}
		return dir, true
	}
	return "", false
}

// cgroupBase is where an executor makes its steps' cgroups: nixflow's
// own cgroup, looked up once (it does not move during a run) instead of
// reading /proc for every step. It keeps the cgroups of finished steps
// that were left empty for the next steps: making and removing a cgroup
// costs the kernel more than the rest of a short step's bookkeeping.
type cgroupBase struct {
	once sync.Once
	dir  string
	ok   bool

	mu sync.Mutex
	// free are empty cgroups, made for earlier steps, that no step uses.
	free []*stepCgroup
}

// get returns ownCgroup's answer, b's first one; a nil b looks it up.
func (b *cgroupBase) get() (string, bool) {
	if b == nil {
		return ownCgroup()
	}
	b.once.Do(func() {
		b.dir, b.ok = ownCgroup()
		if b.ok {
			sweepCgroups(b.dir)
		}
	})
	return b.dir, b.ok
}

// cgroupPrefix starts the name of every step cgroup, followed by the pid
// of the nixflow that made it: the cgroups a nixflow keeps for its later
// steps are removed when it ends, which one killed with SIGKILL cannot
// do; the next nixflow removes them (sweepCgroups).
const cgroupPrefix = "nixflow-step-"

// sweepCgroups removes the empty step cgroups under base made by a
// nixflow that is no longer running. rmdir(2) removes only an empty
// cgroup: one that still holds a process stays.
func sweepCgroups(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), cgroupPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pid, _, ok := strings.Cut(rest, "-")
		if !ok || pid == "" || strings.Trim(pid, "0123456789") != "" {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // its nixflow runs: the cgroup may serve its next step
		}
		_ = removeCgroup(filepath.Join(base, e.Name()))
	}
}

// take returns an empty cgroup an earlier step left, if there is one.
func (b *cgroupBase) take() *stepCgroup {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.free)
	if n == 0 {
		return nil
	}
	g := b.free[n-1]
	b.free[n-1] = nil
	b.free = b.free[:n-1]
	g.empty, g.gone = false, false
	return g
}

// put keeps the empty cgroup g for a later step.
func (b *cgroupBase) put(g *stepCgroup) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free = append(b.free, g)
}

// removeFree removes the cgroups kept for later steps.
func (b *cgroupBase) removeFree() {
	b.mu.Lock()
	free := b.free
	b.free = nil
	b.mu.Unlock()
	for _, g := range free {
		g.close()
	}
}

// newStepCgroup returns a cgroup for a step under base: one an earlier
// step left empty, or a new one named by the step's cookie; nil when
// cgroups cannot be used.
func newStepCgroup(b *cgroupBase, cookie string) *stepCgroup {
	base, ok := b.get()
	if !ok {
		return nil
	}
	if g := b.take(); g != nil {
		return g
	}
	dir := filepath.Join(base, stepCgroupName(cookie))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil
	}
	return &stepCgroup{dir: dir, fd: fd}
}

// start starts c in the cgroup, or, if the kernel refuses that, without.
// It returns the started command.
func (g *stepCgroup) start(c *exec.Cmd) (*exec.Cmd, error) {
	if g == nil {
		return c, c.Start()
	}
	attr := *c.SysProcAttr
	attr.UseCgroupFD, attr.CgroupFD = true, g.fd
	c2 := &exec.Cmd{Path: c.Path, Args: c.Args, Env: c.Env, Dir: c.Dir, Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr, SysProcAttr: &attr}
	if err := c2.Start(); err == nil {
		return c2, nil
	}
	g.close()
	return c, c.Start()
}

// active reports whether the step runs in the cgroup: not when there is
// none, nor when it was closed because the kernel refused to start the
// step in it.
func (g *stepCgroup) active() bool {
	return g != nil && g.fd >= 0
}

// kill kills every process left in the cgroup and in the cgroups a step
// made below it, and waits, briefly, for them to be empty. It tells
// empty from cgroup.events, which counts the cgroups below too: a step
// may make one, and move a process there.
func (g *stepCgroup) kill() {
	if g == nil || g.fd < 0 {
		return
	}
	deadline := time.Now().Add(killTimeout)
	buf := make([]byte, 512)
	for backoff := time.Millisecond; ; backoff = min(2*backoff, 20*time.Millisecond) {
		events, err := g.read("cgroup.events", &buf)
		if err == nil && bytes.Contains(events, []byte("populated 0")) {
			g.gone = true
			// Only a cgroup nothing was killed in serves again: after a
			// write to cgroup.kill, a kernel (6.18 here) kills processes
			// later started into the cgroup with CLONE_INTO_CGROUP.
			g.empty = backoff == time.Millisecond
			return
		}
		if err != nil || time.Now().After(deadline) {
			return
		}
		// cgroup.kill kills the cgroups below too. Before Linux 5.14 there
		// is none: the processes of the cgroup itself are killed one by
		// one, and those below it stay out of reach.
		if os.WriteFile(filepath.Join(g.dir, "cgroup.kill"), []byte("1"), 0) != nil {
			procs, _ := g.read("cgroup.procs", &buf)
			for _, f := range strings.Fields(string(procs)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		} else if backoff > time.Millisecond {
			killMainEnded(g.dir)
		}
		time.Sleep(backoff)
	}
}

// killMainEnded kills the processes, in the cgroup at dir and those below
// it, whose main thread has ended while others live on: cgroup.kill
// misses them (the kernel sends its SIGKILL to the ended main thread,
// where it is lost; 6.18 here), where kill(2) reaches their other threads.
// Their pids, zombies, cannot go to another process before they are
// reaped; cgroup.procs lists them.
func killMainEnded(dir string) {
	buf, stat := make([]byte, 512), make([]byte, 512)
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		procs, err := readFile(filepath.Join(path, "cgroup.procs"), &buf)
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(procs)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if data, err := readProc(pid, "stat", &stat); err == nil {
				if st, ok := parseStat(data); ok && st.state == 'Z' {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		return nil
	})
}

// ended reports whether the step ran in the cgroup and kill found it
// empty: nothing the step started is left, whatever it did.
func (g *stepCgroup) ended() bool {
	return g.active() && g.gone
}

// read reads the cgroup's file name into *buf, like readFile, relative
// to the cgroup's directory: no path to resolve, no os.File.
func (g *stepCgroup) read(name string, buf *[]byte) ([]byte, error) {
	fd, err := syscall.Openat(g.fd, name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return readFD(fd, buf)
}

// release hands the cgroup back once its step is over: to b, for a
// later step, when kill found it empty; otherwise it is removed.
func (g *stepCgroup) release(b *cgroupBase) {
	if g.active() && g.empty && b != nil {
		b.put(g)
		return
	}
	g.close()
}

// close releases the cgroup's directory, removing it (an empty cgroup),
// with the cgroups a step made below it.
func (g *stepCgroup) close() {
	if g == nil || g.fd < 0 {
		return
	}
	syscall.Close(g.fd)
	g.fd = -1
	for i := 0; i < 50; i++ {
		// rmdir fails with EBUSY while a killed process is being torn down.
		if err := removeCgroup(g.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// removeCgroup removes the empty cgroup dir, and the cgroups below it
// first.
func removeCgroup(dir string) error {
	err := os.Remove(dir)
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return err
	}
	entries, rerr := os.ReadDir(dir)
	if rerr != nil {
		return err
	}
	below := false
	for _, e := range entries {
		if e.IsDir() {
			below = true
			_ = removeCgroup(filepath.Join(dir, e.Name()))
		}
	}
	if !below {
		return err
	}
	return os.Remove(dir)
}

// stepCgroupName returns the name of a step cgroup made by this process
// for a step with cookie.
func stepCgroupName(cookie string) string {
	return cgroupPrefix + strconv.Itoa(os.Getpid()) + "-" + cookie
}

// prefixOf returns the start of the paths of the cgroups this process
// makes for the steps whose cookies start with token (see
// guard.cookie); empty when steps get no cgroup.
func (b *cgroupBase) prefixOf(token string) string {
	base, ok := b.get()
	if !ok {
		return ""
	}
	return filepath.Join(base, stepCgroupName(token+"."))
}

// killCgroups kills the processes of every cgroup whose path starts
// with prefix (see prefixOf), and removes the cgroups.
func killCgroups(prefix string) {
	dir, name := filepath.Split(prefix)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), name) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		g := &stepCgroup{dir: path, fd: fd}
		g.kill()
		g.close()
	}
}
