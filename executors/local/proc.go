package local

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file finds a step's processes in /proc: those that left its
// process group, by the cookie in their environment, and the live members
// of its process group.
//
// Cost (BenchmarkProcScan; 2-core VM, Go 1.26): reading /proc/*/environ
// of every process takes 4 to 12 µs a process, 0.3 ms with the 73
// processes of a CI VM and 6.6 ms with 500 more; a step costs about 2 ms
// (BenchmarkRunTrue; bash -c true with os/exec alone, BenchmarkExecTrue:
// 1.6 ms). Only processes started since the step started can carry its
// cookie, and after a short step only their pids need a look. Listing
// /proc to find them took 0.07 ms and 0.6 ms (81 and 581 processes), in
// proportion to the processes running, which many steps at once
// multiply; probing the pids of the window one by one takes 8 and 11 µs
// (2026-11-30, same benchmark). That is cheap enough to scan after every
// step, not only after stopped ones (which get a full scan): an escaped
// daemon is no less a leftover when its step succeeded. A step in a
// cgroup of its own, which holds every process it started, skips the
// scan unless it was stopped.

// newCookie returns a random value for cookieVar.
func newCookie() string {
	return rand.Text() // 128 random bits
}

// procPIDs lists the processes in /proc, but the calling one.
func procPIDs() ([]int, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	pids := make([]int, 0, len(names))
	for _, name := range names {
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(name); err == nil && pid != self {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// readProc reads /proc/<pid>/<name> into *buf, like readFile.
func readProc(pid int, name string, buf *[]byte) ([]byte, error) {
	return readFile("/proc/"+strconv.Itoa(pid)+"/"+name, buf)
}

// readFile reads the file at path into *buf, growing it as needed, and
// returns the bytes read. It avoids os.File: the files of /proc it reads
// are many and small, and read once.
func readFile(path string, buf *[]byte) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return readFD(fd, buf)
}

// readFD reads fd to its end into *buf, as readFile, and closes it.
func readFD(fd int, buf *[]byte) ([]byte, error) {
	defer syscall.Close(fd)
	b := *buf
	n := 0
	for {
		if n == len(b) {
			b = append(b, make([]byte, len(b))...)
			*buf = b
		}
		m, err := syscall.Read(fd, b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return b[:n], nil
		}
		n += m
	}
}

// cookieScan finds the processes whose environment holds needle.
type cookieScan struct {
	needle  []byte
	buf     []byte
	statBuf []byte
	// read reads /proc/<pid>/<name>, as readProc, and kill sends SIGKILL
	// (tests script them).
	read func(pid int, name string, buf *[]byte) ([]byte, error)
	kill func(pid int) error
	// threads lists the threads of a process, and foreign reports
	// whether one runs as another user than nixflow (tests script them).
	threads func(pid int) ([]int, error)
	foreign func(pid int) bool
}

func newCookieScan(cookie string) *cookieScan {
	euid := os.Geteuid()
	return &cookieScan{needle: []byte(cookieVar + "=" + cookie), buf: make([]byte, 32<<10), statBuf: make([]byte, 512), read: readProc,
		kill: func(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }, threads: procThreads,
		foreign: func(pid int) bool { return procForeign(pid, euid) }}
}

// procForeign reports whether process pid runs as another effective user
// than euid, or is gone: the owner of its /proc directory is its
// effective user, whatever the process (its files are root's when it is
// not dumpable, or has no memory: a zombie main thread).
func procForeign(pid, euid int) bool {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/"+strconv.Itoa(pid), &st); err != nil {
		return true
	}
	return int(st.Uid) != euid
}

// procThreads lists the threads of process pid.
func procThreads(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// find returns the processes carrying the cookie. Only the processes of
// nixflow's user can be read; zombies have no environment left. Unless
// all is set, it only reads the processes whose pid was allocated after
// after (see lastPID). executing counts the processes that may be
// executing a program, and empty those whose environment is empty for
// now (see look): they are worth another look.
//
// A small window is probed pid by pid, without listing /proc: with many
// steps running at once, listing costs in proportion to all of their
// processes at every step, while the window holds the few pids allocated
// during the step. The probes may hit threads (/proc/<tid> shows its
// process's environment, and SIGKILL to a thread kills its process).
func (s *cookieScan) find(after int, all bool) (found []int, executing, empty int) {
	look := func(pid int) {
		switch s.look(pid) {
		case holds:
			found = append(found, pid)
		case inExec:
			executing++
		case emptyEnv:
			empty++
		}
	}
	last := 0
	if !all {
		la, ok := readLoadavg()
		last, all = la.lastPID, !ok
		// Probing a pid that is gone costs a failed open, about what
		// listing one entry of /proc costs: probe windows no larger
		// than the number of tasks there are.
		if ok && after <= last && last-after <= la.tasks {
			self := os.Getpid()
			for pid := after + 1; pid <= last; pid++ {
				if pid != self {
					look(pid)
				}
			}
			return found, executing, empty
		}
	}
	pids, err := procPIDs()
	if err != nil {
		return nil, 0, 0
	}
	for _, pid := range pids {
		if all || allocatedBetween(pid, after, last) {
			look(pid)
		}
	}
	return found, executing, empty
}

// What look finds of a process.
const (
	lacks    = iota // no cookie in its environment, or nothing to read
	holds           // the cookie in its environment
	inExec          // no environment yet: it may be executing a program
	emptyEnv        // an empty environment, for now or for good
)

// look reads the environment of process pid. A process shows an empty
// one in the middle of executing a program: from the switch to the new
// address space to the setup of the environment in it (on a loaded
// machine that can take a long time), its stat shows 0 as the
// environment's end (field 51), as an exiting process's does; while the
// kernel writes the environment's pointers, an end that does not change
// yet. A process started with an empty environment (env -i) shows such
// an end for good. So an empty environment is read again between two
// reads of stat: a program whose execution ended in between shows its
// environment, or another end the second time; the same end is emptyEnv,
// worth a few more looks, not more.
//
// A process whose main thread has ended (pthread_exit) lives on in its
// other threads, and one whose thread other than the main one executes a
// program is so for a moment (the kernel ends the others, the main one
// first). Its environment cannot be read through its pid then: it reads
// empty (before Linux 6.15), or fails to open (ESRCH; EACCES for a user
// other than root, as the kernel hands the file to root). Its stat tells:
// the main thread a zombie, or exiting, with more than one thread. It is
// read through a thread that lives.
func (s *cookieScan) look(pid int) int {
	env, err := s.read(pid, "environ", &s.buf)
	switch {
	case err == nil && len(env) > 0:
		if bytes.Contains(env, s.needle) {
			return holds
		}
		return lacks
	case errors.Is(err, syscall.ENOENT):
		// Gone (one whose main thread has ended keeps its directory):
		// one failed open, as a probe of a free pid costs (see find).
		return lacks
	case errors.Is(err, syscall.EACCES) && s.foreign(pid):
		// Another user's (nixflow is not root): none of its threads'
		// environments can be read either. Only a process of nixflow's
		// user (one whose main thread has ended) is worth a read of its
		// stat, which costs about three failed opens; the owner's
		// stat(2), about half of one (BenchmarkProcScan as nobody, 500
		// of root's processes: 8 µs a process against 22 µs with a read
		// of each one's stat, 5 µs with neither).
		return lacks
	}
	before, state := s.envEnd(pid, "stat")
	switch {
	case state == mainEnded:
		return s.lookThreads(pid)
	case err != nil, state != live:
		return lacks
	case before == 0:
		return inExec
	}
	env, err = s.read(pid, "environ", &s.buf)
	if err == nil && len(env) == 0 {
		after, state := s.envEnd(pid, "stat")
		switch {
		case state != live:
			return lacks
		case after != before:
			return inExec
		}
		return emptyEnv
	}
	if err == nil && bytes.Contains(env, s.needle) {
		return holds
	}
	return lacks
}

// lookThreads reads the environment of process pid through the first of
// its threads, other than the main one, that is live and can be read:
// its threads share it.
func (s *cookieScan) lookThreads(pid int) int {
	tids, err := s.threads(pid)
	if err != nil {
		return lacks
	}
	for _, tid := range tids {
		if tid == pid {
			continue
		}
		dir := "task/" + strconv.Itoa(tid) + "/"
		if _, state := s.envEnd(pid, dir+"stat"); state != live {
			continue
		}
		env, err := s.read(pid, dir+"environ", &s.buf)
		if err != nil {
			continue
		}
		if bytes.Contains(env, s.needle) {
			return holds
		}
		return lacks
	}
	return lacks
}

// What envEnd finds of a process.
const (
	notLive   = iota // gone, a zombie, exiting, or a kernel thread
	live             // none of those
	mainEnded        // its main thread a zombie or exiting, other threads left
)

// envEnd reads the stat file name of process pid ("stat", or a thread's
// "task/<tid>/stat"), and returns the end of the process's environment
// in its memory (field 51; 0 while it executes a program) and what it
// finds of it.
func (s *cookieScan) envEnd(pid int, name string) (end uint64, state int) {
	data, err := s.read(pid, name, &s.statBuf)
	if err != nil {
		return 0, notLive
	}
	st, ok := parseStat(data)
	switch {
	case !ok || st.state == 'X' || st.flags&pfKthread != 0:
		return 0, notLive
	case st.state == 'Z' || st.flags&pfExiting != 0:
		if n, _ := statField(data, 20); n > 1 {
			return 0, mainEnded
		}
		return 0, notLive
	}
	// Without the field (before Linux 3.5), as if executing: worth
	// another look.
	end, _ = statField(data, 51)
	return end, live
}

// The flags of a task, in /proc/<pid>/stat: PF_EXITING, PF_KTHREAD.
const (
	pfExiting = 0x00000004
	pfKthread = 0x00200000
)

// gone reports whether the process has ended: it is no more, or a zombie
// with no thread but its main one (a zombie main thread with others left
// is a process that still runs; see mainEnded).
func gone(pid int, buf *[]byte) bool {
	if syscall.Kill(pid, 0) == syscall.ESRCH {
		return true
	}
	data, err := readProc(pid, "stat", buf)
	if err != nil {
		return true
	}
	st, ok := parseStat(data)
	if !ok || (st.state != 'Z' && st.state != 'X') {
		return false
	}
	n, _ := statField(data, 20)
	return n <= 1
}

// lastPID returns the pid the kernel allocated last in nixflow's pid
// namespace: the last field of /proc/loadavg.
func lastPID() (int, bool) {
	la, ok := readLoadavg()
	return la.lastPID, ok
}

// loadavg is what this package needs of /proc/loadavg: "1.00 0.50 0.25
// running/tasks lastpid".
type loadavg struct {
	// tasks counts the kernel's scheduling entities (threads included).
	tasks int
	// lastPID is the pid allocated last in nixflow's pid namespace.
	lastPID int
}

func readLoadavg() (loadavg, bool) {
	buf := make([]byte, 128)
	data, err := readFile("/proc/loadavg", &buf)
	if err != nil {
		return loadavg{}, false
	}
	fields := strings.Fields(string(data))
	if len(fields) != 5 {
		return loadavg{}, false
	}
	_, tasks, _ := strings.Cut(fields[3], "/")
	n, err1 := strconv.Atoi(tasks)
	pid, err2 := strconv.Atoi(fields[4])
	return loadavg{tasks: n, lastPID: pid}, err1 == nil && err2 == nil
}

// allocatedBetween reports whether pid comes after after and up to last
// in the kernel's cyclic allocation of pids; it cannot tell a pid from
// one a whole cycle (pid_max allocations, 32768 by default) later.
func allocatedBetween(pid, after, last int) bool {
	if after <= last {
		return after < pid && pid <= last
	}
	return pid > after || pid <= last // wrapped around
}

// killByCookie kills with SIGKILL every process whose environment carries
// cookie, scanning again until a scan finds none (a process may fork
// while a scan runs) and no process executing a program, whose
// environment cannot be seen yet (see look), is left; then waits for the
// processes it killed to end; all within killTimeout. Unless all is set,
// it only looks at the processes started after the pid after was
// allocated.
func killByCookie(cookie string, after int, all bool) {
	deadline := time.Now().Add(killTimeout)
	killed := killCookieHolders(newCookieScan(cookie), after, all, deadline)
	// A killed process is gone from the scans once its memory is
	// released, but it may take a while to end after that on a busy
	// machine (TestCookieFindsEscapee under load saw it running, exiting,
	// when the scans were over).
	buf := make([]byte, 512)
	for backoff := time.Millisecond; len(killed) > 0; backoff = min(2*backoff, 20*time.Millisecond) {
		killed = slices.DeleteFunc(killed, func(pid int) bool { return gone(pid, &buf) })
		if len(killed) == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(backoff)
	}
}

// killCookieHolders is killByCookie's scans and kills, until deadline; it
// returns the processes it killed.
func killCookieHolders(s *cookieScan, after int, all bool, deadline time.Time) (killed []int) {
	// A process executing a program (see look) is looked at again until
	// it has an environment, however long that takes, within deadline;
	// one whose environment is empty for now, five times (about 30 ms
	// with the backoff).
	const emptyRetries = 5
	retries := 0
	for backoff := time.Millisecond; ; backoff = min(2*backoff, 20*time.Millisecond) {
		found, executing, empty := s.find(after, all)
		if len(found) == 0 && executing == 0 {
			if empty == 0 || retries == emptyRetries {
				return killed
			}
			retries++
		}
		if time.Now().After(deadline) {
			return killed
		}
		for _, pid := range found {
			if s.kill(pid) == nil && !slices.Contains(killed, pid) {
				killed = append(killed, pid)
			}
		}
		time.Sleep(backoff)
	}
}

// groupAlive reports whether the process group pgid has a member that is
// not a zombie. kill(-pgid, 0) answers for free when the group is empty,
// but zombies count as members, and they stay when nothing reaps orphans
// (as in a container whose init does not): then /proc/*/stat tells.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) == syscall.ESRCH {
		return false
	}
	pids, err := procPIDs()
	if err != nil {
		return true
	}
	buf := make([]byte, 512)
	for _, pid := range pids {
		data, err := readProc(pid, "stat", &buf)
		if err != nil {
			continue
		}
		st, ok := parseStat(data)
		if ok && st.pgrp == pgid && st.state != 'Z' && st.state != 'X' {
			return true
		}
	}
	return false
}

// procStat is what this package needs of /proc/<pid>/stat.
type procStat struct {
	state byte
	pgrp  int
	flags uint64
}

// parseStat parses a /proc/<pid>/stat line: "pid (comm) state ppid pgrp
// session tty_nr tpgid flags ...", where comm may hold anything.
func parseStat(data []byte) (procStat, bool) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, false
	}
	var fields [7][]byte
	rest := bytes.TrimLeft(data[i+1:], " ")
	for n := range fields {
		var ok bool
		fields[n], rest, ok = bytes.Cut(rest, []byte{' '})
		if !ok && n < len(fields)-1 {
			return procStat{}, false
		}
	}
	pgrp, err1 := strconv.Atoi(string(fields[2]))
	flags, err2 := strconv.ParseUint(string(fields[6]), 10, 64)
	if len(fields[0]) != 1 || err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{state: fields[0][0], pgrp: pgrp, flags: flags}, true
}

// statField returns field n (from 1) of a /proc/<pid>/stat line, one
// after the name: 20, num_threads; 51, env_end, the end of the process's
// environment in its memory (Linux 3.5 and later; 0 when it has no
// memory, or is in the middle of executing a program).
func statField(data []byte, n int) (uint64, bool) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || n < 3 {
		return 0, false
	}
	f := bytes.Fields(data[i+1:])
	n -= 3 // the fields after the name start with the third
	if len(f) <= n {
		return 0, false
	}
	v, err := strconv.ParseUint(string(f[n]), 10, 64)
	return v, err == nil
}
